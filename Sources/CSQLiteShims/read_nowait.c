#define _GNU_SOURCE
#include "CSQLiteShims.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/uio.h>
#include <unistd.h>

// Reads that refuse to wait for the disk, on the threads that ask for it.
//
// An event loop runs a token lookup's query on its own thread when a reader is idle,
// because a warm lookup takes tens of microseconds and a hop to a reader's thread and
// back costs as much again. But a page that is not in the OS's cache holds the loop, and
// every connection it serves, for a disk read. The loops used to guess: after a slow read
// here that read from the disk, every read went to the readers' threads for a second.
// On a VM that keeps paging out the file cache (this one runs DAMON's reclaim), that
// second came round often: between starts of one node, 0 to 81 % of lookups left the
// loop, and with 46 % gone a lookup cost the node 27.7 µs of CPU against 23.9 with none
// (Benchmarks/RESULTS.md, index, sessions 33 and 34). The kernel knows instead of
// guessing: preadv2 with RWF_NOWAIT copies what is in its cache and answers EAGAIN, at
// once, where it would have waited (starting the read meanwhile). SQLite's unix VFS
// reads through a table of system calls that can be replaced (xSetSystemCall); the
// replacement is the plain call except on a thread between gw_sqlite_nowait_begin and
// gw_sqlite_nowait_end.
//
// What must stay true: a read that refuses returns -1 with errno EAGAIN, never a short
// count. SQLite takes a short read for the file's end and fills the rest with zeros; -1
// fails the statement (SQLITE_IOERR_READ, which rolls back the read transaction), and the
// caller, told by gw_sqlite_nowait_end, reads again on a thread that may wait. (A part of
// the bytes asked for may come back: SQLite asks again for the rest, and that refuses.)
// Where the kernel cannot tell for a file (EOPNOTSUPP: a filesystem without RWF_NOWAIT,
// tmpfs among them on this kernel, or a kernel before 4.14), its reads refuse too: on
// such a filesystem a loop answers only from SQLite's own cache. That is decided a read at
// a time, not once for the process, which holds files on more than one filesystem.

typedef ssize_t (*PRead)(int, void *, size_t, off_t);

static _Thread_local int refusing;
static _Thread_local int refused;
static PRead real_pread;
static PRead real_pread64;

static ssize_t read_or_refuse(PRead real, int fd, void *buffer, size_t n, off_t offset) {
    if (!refusing) return real(fd, buffer, n, offset);
    struct iovec part = {.iov_base = buffer, .iov_len = n};
    ssize_t got = preadv2(fd, &part, 1, offset, RWF_NOWAIT);
    if (got >= 0) return got;
    if (errno == EAGAIN || errno == EOPNOTSUPP) {
        refused = 1;
        errno = EAGAIN;
    }
    return -1;
}

static ssize_t gateway_pread(int fd, void *buffer, size_t n, off_t offset) {
    return read_or_refuse(real_pread, fd, buffer, n, offset);
}

static ssize_t gateway_pread64(int fd, void *buffer, size_t n, off_t offset) {
    return read_or_refuse(real_pread64, fd, buffer, n, offset);
}

static int installed = SQLITE_ERROR;
static pthread_once_t once = PTHREAD_ONCE_INIT;

// SQLite reads with "pread64" or "pread" as it was built (USE_PREAD64, USE_PREAD); both
// are replaced where the table has them, and at least one must be.
static void install_once(void) {
    sqlite3_vfs *unix_vfs = sqlite3_vfs_find("unix");
    if (unix_vfs == NULL || unix_vfs->iVersion < 3 || unix_vfs->xSetSystemCall == NULL) return;
    real_pread = (PRead)unix_vfs->xGetSystemCall(unix_vfs, "pread");
    real_pread64 = (PRead)unix_vfs->xGetSystemCall(unix_vfs, "pread64");
    int any = 0;
    if (real_pread != NULL && unix_vfs->xSetSystemCall(unix_vfs, "pread", (sqlite3_syscall_ptr)gateway_pread) == SQLITE_OK) any = 1;
    if (real_pread64 != NULL && unix_vfs->xSetSystemCall(unix_vfs, "pread64", (sqlite3_syscall_ptr)gateway_pread64) == SQLITE_OK) any = 1;
    installed = any ? SQLITE_OK : SQLITE_ERROR;
}

int gw_sqlite_nowait_install(void) {
    pthread_once(&once, install_once);
    return installed;
}

int gw_sqlite_nowait_begin(void) {
    if (gw_sqlite_nowait_install() != SQLITE_OK) return 0;
    refusing = 1;
    refused = 0;
    return 1;
}

int gw_sqlite_nowait_end(void) {
    refusing = 0;
    return refused;
}
