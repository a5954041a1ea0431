// shows: DURU101 DURU102 DURU103 DURU104 DURU106 DURU108
// Migration 12 done the safe way for one table: foreign keys off outside the
// transaction, duplicates quarantined, explicit columns, a foreign key check.
import 'package:drift/drift.dart';

Future<void> migrateTo12(GeneratedDatabase db) async {
  await db.customStatement('PRAGMA foreign_keys = OFF');
  await db.transaction(() async {
    await db.customStatement('''
      CREATE TABLE note_tags_new (
        note_id TEXT NOT NULL REFERENCES local_notes (id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (note_id, tag)
      );
      CREATE TABLE note_tags_quarantine (note_id TEXT, tag TEXT, reason TEXT NOT NULL);
    ''');
    await db.customStatement(
        "INSERT INTO note_tags_quarantine (note_id, tag, reason) "
        "SELECT note_id, tag, 'duplicate' FROM note_tags "
        "WHERE rowid NOT IN (SELECT min(rowid) FROM note_tags GROUP BY note_id, tag)");
    await db.customStatement(
        "INSERT INTO note_tags_new (note_id, tag) "
        "SELECT note_id, tag FROM note_tags "
        "WHERE rowid IN (SELECT min(rowid) FROM note_tags GROUP BY note_id, tag)");
    // The migration runner took and verified a backup before this step.
    // duru: backup verified
    await db.customStatement('DROP TABLE note_tags');
    await db.customStatement('ALTER TABLE note_tags_new RENAME TO note_tags');
    await db.customStatement('PRAGMA foreign_key_check');
  });
  await db.customStatement('PRAGMA foreign_keys = ON');
}
