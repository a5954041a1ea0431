package app.duru.notes.data

import androidx.room.migration.Migration
import androidx.sqlite.db.SupportSQLiteDatabase

val MIGRATION_8_9 = object : Migration(8, 9) {
    override fun migrate(db: SupportSQLiteDatabase) {
        db.execSQL(
            "CREATE TABLE note_tasks_new (id TEXT PRIMARY KEY, note_id TEXT NOT NULL, content TEXT)"
        )
        db.execSQL("""
            INSERT INTO note_tasks_new (id, note_id, content)
            SELECT id, note_id, content FROM note_tasks
        """.trimIndent())
    }
}
