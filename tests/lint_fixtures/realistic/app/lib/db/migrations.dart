import 'package:sqflite/sqflite.dart';

const int schemaVersion = 3;

Future<void> onCreate(Database db, int version) async {
  await db.execute('''
    CREATE TABLE local_notes (
      id TEXT PRIMARY KEY,
      title TEXT NOT NULL DEFAULT '',
      body TEXT,
      folder_id TEXT,
      updated_at INTEGER NOT NULL
    )
  ''');
  await db.execute('CREATE INDEX idx_notes_updated ON local_notes (updated_at)');
}

Future<void> onUpgrade(Database db, int from, int to) async {
  if (from < 2) {
    await db.execute('ALTER TABLE local_notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0');
  }
  if (from < 3) {
    final column = 'archived_at';
    await db.execute('ALTER TABLE local_notes ADD COLUMN $column INTEGER NULL');
    await db.execute('CREATE INDEX IF NOT EXISTS idx_notes_${column} ON local_notes ($column)');
  }
}

Future<List<Map<String, Object?>>> recent(Database db, int limit) =>
    db.rawQuery('SELECT id, title FROM local_notes ORDER BY updated_at DESC LIMIT ?', [limit]);
