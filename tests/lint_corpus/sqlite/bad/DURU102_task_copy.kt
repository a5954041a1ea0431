// expect: DURU102
package app.duru.notes.data

import androidx.room.migration.Migration
import androidx.sqlite.db.SupportSQLiteDatabase

val MIGRATION_8_9 = object : Migration(8, 9) {
    override fun migrate(db: SupportSQLiteDatabase) {
        val quote = '"'
        db.execSQL("""
            CREATE TABLE note_tasks_new (id TEXT PRIMARY KEY, note_id TEXT NOT NULL, content TEXT)
        """.trimIndent())
        db.execSQL("""
            INSERT INTO note_tasks_new
            SELECT * FROM note_tasks
        """.trimIndent())
    }
}
