import 'dart:io';

import 'package:drift/drift.dart';
import 'package:drift/native.dart';
import 'package:flutter/foundation.dart';
import 'package:path/path.dart' as p;
import 'package:path_provider/path_provider.dart';

import 'tables.dart';

part 'app_database.g.dart';

@DriftDatabase(tables: [Notes, Folders, Tags, NoteTags, Reminders, Outbox])
class AppDatabase extends _$AppDatabase {
  AppDatabase() : super(_openConnection());

  AppDatabase.forTesting(super.executor);

  // Bump together with a new `if (from < n)` step below, never reuse a number.
  @override
  int get schemaVersion => 8;

  @override
  MigrationStrategy get migration => MigrationStrategy(
        onCreate: (m) async {
          await m.createAll();
          await _createSearch();
        },
        onUpgrade: (m, from, to) async {
          // Outside any transaction: SQLite ignores this pragma inside one.
          await customStatement('PRAGMA foreign_keys = OFF');

          if (from < 2) {
            await m.addColumn(notes, notes.pinned);
          }
          if (from < 3) {
            await customStatement('ALTER TABLE notes ADD COLUMN color INTEGER NULL');
          }
          if (from < 4) {
            await customStatement(
              'CREATE INDEX IF NOT EXISTS notes_folder_idx ON notes (folder_id)',
            );
            await customStatement(
              'CREATE INDEX IF NOT EXISTS notes_updated_idx ON notes (updated_at DESC)',
            );
          }
          if (from < 5) {
            await _createSearch();
            await customStatement("INSERT INTO notes_fts(notes_fts) VALUES ('rebuild')");
          }
          if (from < 6) {
            // Tag names become unique per user (case-insensitive).
            await transaction(() async {
              await customStatement('''
                CREATE TABLE tags_new (
                  id TEXT NOT NULL PRIMARY KEY,
                  user_id TEXT NOT NULL,
                  name TEXT NOT NULL COLLATE NOCASE,
                  color INTEGER,
                  created_at INTEGER NOT NULL,
                  UNIQUE (user_id, name)
                )
              ''');
              await customStatement('''
                INSERT OR IGNORE INTO tags_new (id, user_id, name, color, created_at)
                SELECT id, user_id, name, color, created_at FROM tags
              ''');
              await customStatement('DROP TABLE tags');
              await customStatement('ALTER TABLE tags_new RENAME TO tags');
              await customStatement(
                'CREATE INDEX IF NOT EXISTS tags_user_idx ON tags (user_id)',
              );
            });
          }
          if (from < 7) {
            await customStatement(
              'ALTER TABLE notes ADD COLUMN word_count INTEGER NOT NULL DEFAULT 0',
            );
            await customStatement(
              "UPDATE notes SET word_count = length(trim(body)) - length(replace(trim(body), ' ', '')) + 1 "
              "WHERE body IS NOT NULL AND trim(body) <> ''",
            );
          }
          if (from < 8) {
            await m.createTable(outbox);
            await customStatement(
              'CREATE INDEX IF NOT EXISTS outbox_created_idx ON outbox (created_at)',
            );
          }
        },
        beforeOpen: (details) async {
          if (kDebugMode && details.hadUpgrade) {
            final broken = await customSelect('PRAGMA foreign_key_check').get();
            assert(broken.isEmpty, 'foreign key violations after upgrade: $broken');
          }
          await customStatement('PRAGMA foreign_keys = ON');
          await customStatement('PRAGMA journal_mode = WAL');
          await customStatement('PRAGMA busy_timeout = 5000');
        },
      );

  Future<void> _createSearch() async {
    await customStatement('''
      CREATE VIRTUAL TABLE IF NOT EXISTS notes_fts USING fts5(
        title, body, content='notes', content_rowid='rowid', tokenize='unicode61'
      )
    ''');
    await customStatement('''
      CREATE TRIGGER IF NOT EXISTS notes_fts_insert AFTER INSERT ON notes BEGIN
        INSERT INTO notes_fts(rowid, title, body) VALUES (new.rowid, new.title, new.body);
      END
    ''');
    await customStatement('''
      CREATE TRIGGER IF NOT EXISTS notes_fts_delete AFTER DELETE ON notes BEGIN
        INSERT INTO notes_fts(notes_fts, rowid, title, body)
        VALUES ('delete', old.rowid, old.title, old.body);
      END
    ''');
    await customStatement('''
      CREATE TRIGGER IF NOT EXISTS notes_fts_update AFTER UPDATE OF title, body ON notes BEGIN
        INSERT INTO notes_fts(notes_fts, rowid, title, body)
        VALUES ('delete', old.rowid, old.title, old.body);
        INSERT INTO notes_fts(rowid, title, body) VALUES (new.rowid, new.title, new.body);
      END
    ''');
  }
}

LazyDatabase _openConnection() {
  return LazyDatabase(() async {
    final folder = await getApplicationDocumentsDirectory();
    final file = File(p.join(folder.path, 'notes.sqlite'));
    return NativeDatabase.createInBackground(file);
  });
}
