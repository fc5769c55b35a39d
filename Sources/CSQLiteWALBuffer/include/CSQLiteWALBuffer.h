#ifndef CSQLITE_WAL_BUFFER_H
#define CSQLITE_WAL_BUFFER_H

/// Registers (once; later calls return the first result) a SQLite VFS named
/// "gateway-wal" that is the platform's default VFS except for write-ahead logs, whose
/// frames it gathers in memory and writes in large pieces. SQLITE_OK on success.
int gw_sqlite_wal_buffer_register(void);

/// The VFS's name, for sqlite3_open_v2.
extern const char *const gw_sqlite_wal_buffer_vfs_name;

#endif
