// expect: DURU223
Future<void> cleanUp(Database db) async {
  // Before adding the foreign key: drop tag links whose note is gone.
  await db.execute('DELETE FROM note_tags WHERE note_id NOT IN (SELECT id FROM local_notes)');
}
