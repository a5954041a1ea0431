import GRDB

func registerV9(_ migrator: inout DatabaseMigrator) {
    migrator.registerMigration("v9") { db in
        try db.execute(sql: "VACUUM INTO '\(backupPath)'")
        try db.execute(sql: """
            DROP TABLE note_links
            """)
    }
}
