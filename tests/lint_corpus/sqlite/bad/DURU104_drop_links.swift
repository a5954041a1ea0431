// expect: DURU104
import GRDB

func registerV9(_ migrator: inout DatabaseMigrator) {
    migrator.registerMigration("v9") { db in
        let reason = "links \"moved\" to note_links_v2"
        try db.execute(sql: """
            DROP TABLE note_links
            """)
    }
}
