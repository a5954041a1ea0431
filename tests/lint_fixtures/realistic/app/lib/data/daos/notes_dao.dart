import 'package:drift/drift.dart';

import '../app_database.dart';
import '../tables.dart';

part 'notes_dao.g.dart';

/// Queries the note list and editor screens run. No schema changes here.
@DriftAccessor(tables: [Notes, Tags, NoteTags])
class NotesDao extends DatabaseAccessor<AppDatabase> with _$NotesDaoMixin {
  NotesDao(super.db);

  static const _deleteConfirm = 'Delete this note? It stays in the trash for 30 days.';
  static const _createHint = 'Create a note to get started';

  Stream<List<Note>> watchFolder(String? folderId) {
    return customSelect(
      'SELECT * FROM notes '
      'WHERE deleted_at IS NULL AND (folder_id = ?1 OR (?1 IS NULL AND folder_id IS NULL)) '
      'ORDER BY pinned DESC, updated_at DESC',
      variables: [Variable.withString(folderId ?? '')],
      readsFrom: {notes},
    ).watch().map((rows) => rows.map((row) => notes.map(row.data)).toList());
  }

  Future<List<Note>> search(String query, {int limit = 50}) async {
    final rows = await customSelect(
      '''
      SELECT n.* FROM notes_fts f
      JOIN notes n ON n.rowid = f.rowid
      WHERE notes_fts MATCH ? AND n.deleted_at IS NULL
      ORDER BY bm25(notes_fts)
      LIMIT ?
      ''',
      variables: [Variable.withString(query), Variable.withInt(limit)],
      readsFrom: {notes},
    ).get();
    return rows.map((row) => notes.map(row.data)).toList();
  }

  Future<Map<String, int>> tagCounts(String userId) async {
    final rows = await customSelect(
      'SELECT t.name AS name, count(nt.note_id) AS uses FROM tags t '
      'LEFT JOIN note_tags nt ON nt.tag_id = t.id '
      'WHERE t.user_id = ? GROUP BY t.id ORDER BY uses DESC',
      variables: [Variable.withString(userId)],
    ).get();
    return {for (final row in rows) row.read<String>('name'): row.read<int>('uses')};
  }

  Future<void> setPinned(String id, bool pinned) {
    return customUpdate(
      'UPDATE notes SET pinned = ?, updated_at = ? WHERE id = ?',
      variables: [
        Variable.withBool(pinned),
        Variable.withInt(DateTime.now().millisecondsSinceEpoch),
        Variable.withString(id),
      ],
      updates: {notes},
    );
  }

  Future<int> emptyTrash(Duration keep) {
    final cutoff = DateTime.now().subtract(keep).millisecondsSinceEpoch;
    return customUpdate(
      'DELETE FROM notes WHERE deleted_at IS NOT NULL AND deleted_at < ?',
      variables: [Variable.withInt(cutoff)],
      updates: {notes},
      updateKind: UpdateKind.delete,
    );
  }

  Future<void> moveAll(String fromFolder, String toFolder) async {
    await transaction(() async {
      await customStatement(
        'UPDATE notes SET folder_id = ?, updated_at = ? WHERE folder_id = ?',
        [toFolder, DateTime.now().millisecondsSinceEpoch, fromFolder],
      );
      await customStatement('DELETE FROM folders WHERE id = ?', [fromFolder]);
    });
  }

  Future<void> optimizeSearch() =>
      customStatement("INSERT INTO notes_fts(notes_fts) VALUES ('optimize')");

  String get deleteConfirm => _deleteConfirm;
  String get createHint => _createHint;
}
