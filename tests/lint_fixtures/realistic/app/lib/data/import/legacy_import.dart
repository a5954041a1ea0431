// Moves the notes of a 1.x backup (sqflite schema, version 6) into the drift database.
// The backup file is attached read-only; nothing in it is changed or deleted.
import 'package:drift/drift.dart';

import '../app_database.dart';

class LegacyImport {
  LegacyImport(this.db);

  final AppDatabase db;

  Future<ImportResult> run(String backupPath) async {
    await db.customStatement("ATTACH DATABASE ? AS legacy", [backupPath]);
    try {
      return await db.transaction(() async {
        final before = await _count('SELECT count(*) AS c FROM notes');
        await db.customStatement('''
          INSERT INTO notes (id, folder_id, title, body, pinned, updated_at, deleted_at)
          SELECT n.id, n.folder_id, n.title, n.body, n.pinned, n.updated_at, n.deleted_at
          FROM legacy.local_notes AS n
          WHERE NOT EXISTS (SELECT 1 FROM notes AS m WHERE m.id = n.id)
        ''');
        await db.customStatement('''
          INSERT INTO folders (id, name, position)
          SELECT f.id, f.name, 0
          FROM legacy.local_folders AS f
          WHERE f.deleted_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM folders AS g WHERE g.id = f.id)
        ''');
        final after = await _count('SELECT count(*) AS c FROM notes');
        final skipped = await _count('''
          SELECT count(*) AS c FROM legacy.local_notes AS n
          WHERE EXISTS (SELECT 1 FROM notes AS m WHERE m.id = n.id AND m.updated_at <> n.updated_at)
        ''');
        return ImportResult(imported: after - before, alreadyPresent: skipped);
      });
    } finally {
      await db.customStatement('DETACH DATABASE legacy');
    }
  }

  Future<int> _count(String sql) async {
    final row = await db.customSelect(sql).getSingle();
    return row.read<int>('c');
  }
}

class ImportResult {
  const ImportResult({required this.imported, required this.alreadyPresent});

  final int imported;
  final int alreadyPresent;

  String get summary => 'Imported $imported notes ($alreadyPresent were already here).';
}
