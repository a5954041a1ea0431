// expect: DURU201 DURU208 DURU221
import { Client } from "pg";

const notesIndex = /* the hot path of pull */ `
  CREATE INDEX notes_user_seq ON notes (user_id, change_seq)
`;

export async function up(client: Client): Promise<void> {
  const ratio = 3 / 2; const re = /"'`/g;
  await client.query(notesIndex);
  await client.query(`DROP INDEX ${"notes_user_updated"}`);
}
