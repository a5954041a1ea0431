// The sqflite schema of app releases 1.x, before the move to drift. Still opened by the
// import screen, which upgrades an old backup file to version 6 before reading it.
import 'package:sqflite/sqflite.dart';

const int schemaVersion = 6;

const _createNotes = '''
  CREATE TABLE local_notes (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    body TEXT,
    folder_id TEXT,
    updated_at INTEGER NOT NULL
  )
''';

const _createFolders = '''
  CREATE TABLE local_folders (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent_id TEXT REFERENCES local_folders (id) ON DELETE CASCADE
  )
''';

Future<void> onConfigure(Database db) async {
  // onConfigure runs before any transaction is opened, so the pragma takes effect.
  await db.execute('PRAGMA foreign_keys = ON');
}

Future<void> onCreate(Database db, int version) async {
  await db.execute(_createNotes);
  await db.execute(_createFolders);
  await db.execute('CREATE INDEX idx_notes_updated ON local_notes (updated_at)');
  for (var v = 2; v <= version; v++) {
    await _steps[v]!(db);
  }
}

Future<void> onUpgrade(Database db, int from, int to) async {
  for (var v = from + 1; v <= to; v++) {
    await _steps[v]!(db);
  }
}

final Map<int, Future<void> Function(Database)> _steps = {
  2: (db) async {
    await db.execute('ALTER TABLE local_notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0');
  },
  3: (db) async {
    final column = 'archived_at';
    await db.execute('ALTER TABLE local_notes ADD COLUMN $column INTEGER NULL');
    await db.execute('CREATE INDEX IF NOT EXISTS idx_notes_${column} ON local_notes ($column)');
  },
  4: (db) async {
    await db.execute("""
      CREATE TABLE local_reminders (
        id TEXT PRIMARY KEY,
        note_id TEXT NOT NULL REFERENCES local_notes (id) ON DELETE CASCADE,
        remind_at INTEGER NOT NULL,
        done INTEGER NOT NULL DEFAULT 0
      )
    """);
    await db.execute(
        'CREATE INDEX idx_reminders_due ON local_reminders (remind_at) WHERE done = 0');
  },
  5: (db) async {
    // Every table gets a soft-delete column for the trash.
    for (final table in ['local_notes', 'local_folders', 'local_reminders']) {
      await db.execute('ALTER TABLE $table ADD COLUMN deleted_at INTEGER');
    }
  },
  6: (db) async {
    await db.execute('ALTER TABLE local_notes ADD COLUMN sync_state TEXT NOT NULL');
    await db.execute("UPDATE local_notes SET sync_state = 'pending'");
  },
};

Future<List<Map<String, Object?>>> recent(Database db, int limit) =>
    db.rawQuery('SELECT id, title FROM local_notes ORDER BY updated_at DESC LIMIT ?', [limit]);

Future<int> purgeTrash(Database db, int before) => db.rawDelete(
    'DELETE FROM local_notes WHERE deleted_at IS NOT NULL AND deleted_at < ?', [before]);
