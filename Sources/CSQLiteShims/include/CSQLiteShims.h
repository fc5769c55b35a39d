#ifndef CSQLITE_SHIMS_H
#define CSQLITE_SHIMS_H

#include <sqlite3.h>

/// Registers (once; later calls return the first result) a SQLite VFS named
/// "gateway-wal" that is the platform's default VFS except for write-ahead logs, whose
/// frames it gathers in memory and writes in large pieces. SQLITE_OK on success.
int gw_sqlite_wal_buffer_register(void);

/// The VFS's name, for sqlite3_open_v2.
extern const char *const gw_sqlite_wal_buffer_vfs_name;

/// Installs (once; later calls return the first result) SQLite's own page cache behind a
/// wrapper that skips needless truncations (page_cache.c). It runs when the program is
/// loaded, since it must come before anything starts SQLite (opening a connection or
/// finding a VFS does; after that it could change nothing and would return
/// SQLITE_MISUSE). SQLITE_OK when installed.
int gw_sqlite_page_cache_install(void);

/// The wrapper's methods, for tests that drive a cache directly; NULL unless installed.
const sqlite3_pcache_methods2 *gw_sqlite_page_cache_methods(void);

/// Turns off (once, when the program is loaded; later calls return the first result)
/// SQLite's count of the memory it holds, which takes a process-wide mutex on every
/// allocation (memory_status.c). SQLITE_OK when off.
int gw_sqlite_memory_status_off(void);

/// Replaces (once; later calls return the first result) the reads of SQLite's unix VFS
/// with ones that, on a thread between gw_sqlite_nowait_begin and gw_sqlite_nowait_end,
/// refuse to wait for the disk (read_nowait.c). Call it before opening any connection.
/// SQLITE_OK when installed.
int gw_sqlite_nowait_install(void);

/// From now on, the calling thread's SQLite reads of pages not in the OS's cache fail at
/// once (SQLITE_IOERR_READ) instead of waiting for the disk; where the kernel cannot
/// tell for a file, its reads fail too. 0, changing nothing, when not installed.
int gw_sqlite_nowait_begin(void);

/// Ends gw_sqlite_nowait_begin on the calling thread: 1 when a read refused since then,
/// and what was read in that time must be read again on a thread that may wait.
int gw_sqlite_nowait_end(void);

/// The number of names the open file `fd` has (0 once it was unlinked), read with statx
/// asking for the link count alone, so that no timestamp is read (link_count.c); -1 when
/// it cannot be told.
int gw_file_link_count(int fd);

#endif
