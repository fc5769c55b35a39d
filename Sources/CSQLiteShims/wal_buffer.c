#include "CSQLiteShims.h"

#include <pthread.h>
#include <sqlite3.h>
#include <string.h>

// SQLite writes each WAL frame with two system calls, its 24-byte header and then its
// page, each at an offset that straddles page-cache pages: ingesting a study wrote about
// ten frames this way, and those pwrites were a quarter of the node's CPU while a commit
// still waited for all of them before its fsync (Benchmarks/RESULTS.md, session 17). This
// VFS is the default one except for write-ahead logs, whose writes it gathers in memory
// and hands on in pieces of up to BUFFER_BYTES: 16 frames of 4 KiB pages. (The unix VFS
// writes at most 128 KiB - 1 bytes a call and answers SQLITE_FULL to a larger write.)
//
// What must stay true: every byte of a commit is in the file when SQLite finishes writing
// it, whatever the synchronous setting, because other connections and processes learn of
// frames from the wal-index, which SQLite updates right after. So the buffer goes out
//   - at a commit frame's header, and again after the page that follows it (the WAL
//     format gives a frame header a database size only on a transaction's last frame);
//   - before a sync, a truncate, a size query, a file control and a mapping;
//   - before a read that overlaps it (the writer rereads pages it spilled mid-transaction);
//   - before any write that neither extends it nor falls inside it.
// What is left at close is dropped (see wal_close). A failed write-out drops the buffer
// and returns the error to the call that caused it: that transaction fails and SQLite
// never commits it, as with a failed direct write.
enum { BUFFER_BYTES = 64 << 10, FRAME_HEADER_BYTES = 24, WAL_HEADER_BYTES = 32 };

typedef struct {
    sqlite3_file base;
    sqlite3_file *real;      // the default VFS's file, in the same allocation, after this
    unsigned char *buffer;   // allocated at the first write: readers never write
    sqlite3_int64 start;     // file offset of buffer[0]
    int used;
    int commit_pending;      // a commit frame's header is in: its page completes the commit
} WALFile;

static sqlite3_vfs *base_vfs;
static sqlite3_vfs wal_vfs;
static sqlite3_io_methods wal_methods;
const char *const gw_sqlite_wal_buffer_vfs_name = "gateway-wal";

static int write_out(WALFile *f) {
    if (f->used == 0) return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buffer, f->used, f->start);
    f->used = 0;
    return rc;
}

static int is_commit_header(const void *data, int n, sqlite3_int64 offset) {
    if (n != FRAME_HEADER_BYTES || offset < WAL_HEADER_BYTES) return 0;
    const unsigned char *h = data;
    return (h[4] | h[5] | h[6] | h[7]) != 0;
}

static int wal_write(sqlite3_file *file, const void *data, int n, sqlite3_int64 offset) {
    WALFile *f = (WALFile *)file;
    if (f->used > 0 && offset >= f->start && offset + n <= f->start + f->used) {
        memcpy(f->buffer + (offset - f->start), data, n);
    } else if (f->used > 0 && offset == f->start + f->used && f->used + n <= BUFFER_BYTES) {
        memcpy(f->buffer + f->used, data, n);
        f->used += n;
    } else {
        int rc = write_out(f);
        if (rc != SQLITE_OK) return rc;
        if (f->buffer == NULL) f->buffer = sqlite3_malloc(BUFFER_BYTES);
        if (f->buffer == NULL || n > BUFFER_BYTES) return f->real->pMethods->xWrite(f->real, data, n, offset);
        memcpy(f->buffer, data, n);
        f->start = offset;
        f->used = n;
    }
    if (f->commit_pending) {
        f->commit_pending = 0;
        return write_out(f);
    }
    if (!is_commit_header(data, n, offset)) return SQLITE_OK;
    // Out at once, not only after the page that follows: when a transaction rewrote a
    // page it had already logged, SQLite rewrites the checksums of the frames after it,
    // the commit frame's header last, and no page follows.
    f->commit_pending = 1;
    return write_out(f);
}

static int wal_read(sqlite3_file *file, void *data, int n, sqlite3_int64 offset) {
    WALFile *f = (WALFile *)file;
    if (f->used > 0 && offset < f->start + f->used && offset + n > f->start) {
        int rc = write_out(f);
        if (rc != SQLITE_OK) return rc;
    }
    return f->real->pMethods->xRead(f->real, data, n, offset);
}

// Whatever is still here at close belongs to no commit (every commit went out whole), and
// writing it now could overwrite frames another process has since logged at those offsets.
static int wal_close(sqlite3_file *file) {
    WALFile *f = (WALFile *)file;
    int closed = f->real->pMethods->xClose(f->real);
    sqlite3_free(f->buffer);
    f->buffer = NULL;
    f->used = 0;
    return closed;
}

// The calls below hand on to the real file, writing the buffer out first where the
// call could observe or depend on the file's contents.
#define REAL(f) (((WALFile *)(f))->real)
#define WRITE_OUT_OR_RETURN(f) do { int rc_ = write_out((WALFile *)(f)); if (rc_ != SQLITE_OK) return rc_; } while (0)

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size) {
    WRITE_OUT_OR_RETURN(f);
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int wal_sync(sqlite3_file *f, int flags) {
    WRITE_OUT_OR_RETURN(f);
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size) {
    WRITE_OUT_OR_RETURN(f);
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int wal_file_control(sqlite3_file *f, int op, void *arg) {
    WRITE_OUT_OR_RETURN(f);
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int wal_fetch(sqlite3_file *f, sqlite3_int64 offset, int n, void **out) {
    WRITE_OUT_OR_RETURN(f);
    *out = NULL;
    if (REAL(f)->pMethods->iVersion < 3) return SQLITE_OK;
    return REAL(f)->pMethods->xFetch(REAL(f), offset, n, out);
}
static int wal_lock(sqlite3_file *f, int level) { return REAL(f)->pMethods->xLock(REAL(f), level); }
static int wal_unlock(sqlite3_file *f, int level) { return REAL(f)->pMethods->xUnlock(REAL(f), level); }
static int wal_check_reserved(sqlite3_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int wal_sector_size(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int wal_device(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int wal_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **out) {
    return REAL(f)->pMethods->xShmMap(REAL(f), region, size, extend, out);
}
static int wal_shm_lock(sqlite3_file *f, int offset, int n, int flags) { return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags); }
static void wal_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int wal_shm_unmap(sqlite3_file *f, int delete) { return REAL(f)->pMethods->xShmUnmap(REAL(f), delete); }
static int wal_unfetch(sqlite3_file *f, sqlite3_int64 offset, void *p) {
    return REAL(f)->pMethods->iVersion < 3 ? SQLITE_OK : REAL(f)->pMethods->xUnfetch(REAL(f), offset, p);
}

// Files other than WALs are opened by the default VFS straight into SQLite's memory, so
// they carry its methods and cost nothing extra.
static int wal_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags) {
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL)) return base_vfs->xOpen(base_vfs, name, file, flags, out_flags);
    WALFile *f = (WALFile *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods) f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return rc;
    }
    f->base.pMethods = &wal_methods;
    return SQLITE_OK;
}

static int registered = SQLITE_ERROR;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void register_once(void) {
    base_vfs = sqlite3_vfs_find(NULL);
    if (base_vfs == NULL) return;
    wal_vfs = *base_vfs;
    wal_vfs.pNext = NULL;
    wal_vfs.zName = gw_sqlite_wal_buffer_vfs_name;
    wal_vfs.szOsFile = (int)sizeof(WALFile) + base_vfs->szOsFile;
    wal_vfs.xOpen = wal_open;
    wal_methods = (sqlite3_io_methods){
        .iVersion = 3, .xClose = wal_close, .xRead = wal_read, .xWrite = wal_write, .xTruncate = wal_truncate,
        .xSync = wal_sync, .xFileSize = wal_file_size, .xLock = wal_lock, .xUnlock = wal_unlock,
        .xCheckReservedLock = wal_check_reserved, .xFileControl = wal_file_control, .xSectorSize = wal_sector_size,
        .xDeviceCharacteristics = wal_device, .xShmMap = wal_shm_map, .xShmLock = wal_shm_lock,
        .xShmBarrier = wal_shm_barrier, .xShmUnmap = wal_shm_unmap, .xFetch = wal_fetch, .xUnfetch = wal_unfetch,
    };
    registered = sqlite3_vfs_register(&wal_vfs, 0);
}

int gw_sqlite_wal_buffer_register(void) {
    pthread_once(&once, register_once);
    return registered;
}
