// shows: DURU201 DURU208
import { Client } from "pg";

export async function up(client: Client): Promise<void> {
  await client.query(`SET lock_timeout = '5s'; SET statement_timeout = '30s'`);
  // CREATE INDEX CONCURRENTLY cannot run in a transaction block: autocommit here.
  await client.query(`
    CREATE INDEX CONCURRENTLY notes_user_seq ON notes (user_id, change_seq)
  `);
  await client.query('DROP INDEX CONCURRENTLY notes_user_updated');
}
