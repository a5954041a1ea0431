// Migration 12 as the app shipped it: seven tables rebuilt at once with
// INSERT OR IGNORE ... SELECT * ... WHERE note_id IN (...), no backup, no check.
// expect: DURU101 DURU102 DURU103 DURU104 DURU105 DURU108
import 'package:drift/drift.dart';

/* Tables rebuilt: notes, note_tags, note_links, note_tasks,
   note_reminders, note_folders, note_attachments. */
Future<void> migrateTo12(GeneratedDatabase db) async {
  await db.customStatement('''
    CREATE TABLE notes_new (
      id TEXT NOT NULL PRIMARY KEY,
      note_id TEXT NOT NULL,
      title TEXT NOT NULL DEFAULT '',
      body TEXT NOT NULL DEFAULT ''
    )
  ''');
  await db.customStatement('''
    INSERT OR IGNORE INTO notes_new SELECT * FROM notes WHERE note_id IN (SELECT id FROM local_notes);
    DROP TABLE notes;
    ALTER TABLE notes_new RENAME TO notes;
  ''');

  await db.customStatement(
      'CREATE TABLE note_tags_new (note_id TEXT NOT NULL, tag TEXT NOT NULL, '
      'PRIMARY KEY (note_id, tag))');
  await db.customStatement('INSERT OR IGNORE INTO note_tags_new SELECT * FROM note_tags '
      'WHERE note_id IN (SELECT id FROM local_notes)');
  await db.customStatement('DROP TABLE note_tags');
  await db.customStatement("ALTER TABLE note_tags_new RENAME TO note_tags");

  await db.customStatement(r"""
    CREATE TABLE note_links_new (note_id TEXT NOT NULL, target_title TEXT NOT NULL, target_id TEXT)
  """);
  await db.customStatement(r'''
    INSERT OR IGNORE INTO note_links_new SELECT * FROM note_links WHERE note_id IN (SELECT id FROM local_notes);
    DROP TABLE note_links;
    ALTER TABLE note_links_new RENAME TO note_links;
  ''');

  for (final sql in _rest) {
    await db.customStatement(sql);
  }
}

const _rest = <String>[
  "CREATE TABLE note_tasks_new (id TEXT PRIMARY KEY, note_id TEXT NOT NULL, content TEXT NOT NULL)",
  "INSERT OR IGNORE INTO note_tasks_new SELECT * FROM note_tasks WHERE note_id IN (SELECT id FROM local_notes)",
  "DROP TABLE note_tasks",
  "ALTER TABLE note_tasks_new RENAME TO note_tasks",
  'CREATE TABLE note_reminders_new (id INTEGER PRIMARY KEY, note_id TEXT NOT NULL, remind_at INTEGER)',
  'INSERT OR IGNORE INTO note_reminders_new SELECT * FROM note_reminders WHERE note_id IN (SELECT id FROM local_notes)',
  'DROP TABLE note_reminders',
  'ALTER TABLE note_reminders_new RENAME TO note_reminders',
  'CREATE TABLE note_folders_new (note_id TEXT PRIMARY KEY, folder_id TEXT NOT NULL, added_at INTEGER)',
  'INSERT OR IGNORE INTO note_folders_new SELECT * FROM note_folders WHERE note_id IN (SELECT id FROM local_notes)',
  'DROP TABLE note_folders',
  'ALTER TABLE note_folders_new RENAME TO note_folders',
  '''CREATE TABLE note_attachments_new (
       id TEXT PRIMARY KEY,
       note_id TEXT NOT NULL,
       file_name TEXT NOT NULL
     )''',
  '''INSERT OR IGNORE INTO note_attachments_new SELECT * FROM note_attachments
     WHERE note_id IN (SELECT id FROM local_notes)''',
  'DROP TABLE note_attachments',
  'ALTER TABLE note_attachments_new RENAME TO note_attachments',
];
