// What the tests read straight from a SQLite file: its page size, from the header.
import { closeSync, openSync, readSync } from "node:fs";

/** The page size a database file was made with (header bytes 16–17; 1 stands for 65536). */
export function pageSizeOf(file: string): number {
  const header = Buffer.alloc(2);
  const fd = openSync(file, "r");
  try {
    readSync(fd, header, 0, 2, 16);
  } finally {
    closeSync(fd);
  }
  const size = header.readUInt16BE(0);
  return size === 1 ? 65536 : size;
}
