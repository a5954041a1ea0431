Future<void> cleanUp(Database db) async {
  await db.execute('''
    INSERT INTO quarantine_note_tags (note_id, tag, reason)
    SELECT note_id, tag, 'note missing' FROM note_tags
    WHERE note_id NOT IN (SELECT id FROM local_notes)
  ''');
  await db.execute('DELETE FROM note_tags WHERE note_id NOT IN (SELECT id FROM local_notes)');
}
