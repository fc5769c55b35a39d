/*
 * power_loss.so: an LD_PRELOAD shim that lets crash_consistency.py play a power cut, not
 * only a SIGKILL. A SIGKILL loses nothing the process wrote: the page cache survives it.
 * A power cut loses any write no fsync or fdatasync has covered yet, and that is the case
 * the store's promises are about (an answer only after the sync that covers it).
 *
 * For every write to a regular file under $POWER_LOSS_DIR the shim appends an undo record
 * to $POWER_LOSS_LOG: the path, where the write went, the bytes it replaced and the file's
 * size before it. A sync appends a mark saying that every record of that path written
 * before the sync began is durable. After the kill, crash_consistency.py reads the log and
 * puts back what the unsynced writes replaced, so the files are as a disk could have left
 * them.
 *
 * What must stay true:
 * - A write's record is appended only after the write returned, and a sync's mark names
 *   the log's length from before the sync began. So a record before a mark was written
 *   before that sync started, and the sync covered it. A kill between a write and its
 *   record leaves the write counted as durable: the shim errs towards losing less.
 * - Records are appended with one write() to an O_APPEND descriptor, so records from
 *   different threads never interleave.
 * - The -shm files are skipped: SQLite rebuilds the WAL index after every process has
 *   gone, whatever that file holds.
 *
 * With $POWER_LOSS_CUT_AT=N the shim kills its own process with SIGKILL right after the
 * Nth sync it recorded: the cut then falls between two syncs, as between the index's and
 * the audit file's, a window too narrow for a kill from outside to find often.
 *
 * Not covered: files created or renamed without a directory fsync (a power cut could
 * lose the name itself), and writes through stdio, which glibc makes without the PLT.
 *
 * Record: kind (1 byte: 'W' write, 'T' truncate, 'S' sync), then five little-endian
 * 64-bit fields: path length, offset, size before, length of the change, length of the
 * old bytes; then the path and the old bytes. A sync's offset field is the log's length
 * when the sync began.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int logfd = -1;
static char prefix[PATH_MAX];
static size_t prefix_length;
static long cut_at = -1;
static atomic_long syncs;
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

__attribute__((constructor)) static void power_loss_start(void) {
    real_pwrite = dlsym(RTLD_NEXT, "pwrite64");
    real_write = dlsym(RTLD_NEXT, "write");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    const char *dir = getenv("POWER_LOSS_DIR"), *log = getenv("POWER_LOSS_LOG");
    if (!dir || !log || !realpath(dir, prefix)) return;
    prefix_length = strlen(prefix);
    const char *cut = getenv("POWER_LOSS_CUT_AT");
    if (cut) cut_at = atol(cut);
    logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* The path of a descriptor worth recording into `path`, or 0. */
static int tracked(int fd, char *path) {
    if (logfd < 0 || fd == logfd) return 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, PATH_MAX - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    if ((size_t)n <= prefix_length || strncmp(path, prefix, prefix_length) != 0 || path[prefix_length] != '/') return 0;
    if (n > 4 && strcmp(path + n - 4, "-shm") == 0) return 0;
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

static void append(char kind, const char *path, uint64_t offset, uint64_t size_before, uint64_t length,
                   const void *old, uint64_t old_length) {
    uint64_t path_length = strlen(path);
    size_t total = 1 + 5 * 8 + path_length + old_length;
    unsigned char *record = malloc(total), *at = record;
    if (!record) abort();
    *at++ = (unsigned char)kind;
    uint64_t fields[5] = {path_length, offset, size_before, length, old_length};
    for (int i = 0; i < 5; i++, at += 8)
        for (int b = 0; b < 8; b++) at[b] = (unsigned char)(fields[i] >> (8 * b));
    memcpy(at, path, path_length);
    if (old_length) memcpy(at + path_length, old, old_length);
    if (real_write(logfd, record, total) != (ssize_t)total) abort();
    free(record);
}

/* The bytes [offset, offset + length) currently hold, cut at the file's end. */
static unsigned char *old_bytes(int fd, off_t offset, size_t length, off_t size, size_t *got) {
    *got = offset < size ? (size_t)(size - offset) < length ? (size_t)(size - offset) : length : 0;
    unsigned char *old = malloc(*got ? *got : 1);
    if (!old || (*got && pread(fd, old, *got, offset) != (ssize_t)*got)) abort();
    return old;
}

static ssize_t recorded_write(int fd, const void *buf, size_t n, off_t offset, int positional) {
    char path[PATH_MAX];
    if (!tracked(fd, path)) return positional ? real_pwrite(fd, buf, n, offset) : real_write(fd, buf, n);
    struct stat st;
    if (fstat(fd, &st) != 0) abort();
    if (!positional) offset = (fcntl(fd, F_GETFL) & O_APPEND) ? st.st_size : lseek(fd, 0, SEEK_CUR);
    size_t got;
    unsigned char *old = old_bytes(fd, offset, n, st.st_size, &got);
    ssize_t written = positional ? real_pwrite(fd, buf, n, offset) : real_write(fd, buf, n);
    if (written > 0) append('W', path, (uint64_t)offset, (uint64_t)st.st_size, (uint64_t)written, old,
                           got < (size_t)written ? got : (uint64_t)written);
    free(old);
    return written;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t offset) { return recorded_write(fd, buf, n, offset, 1); }
ssize_t pwrite(int fd, const void *buf, size_t n, off_t offset) { return recorded_write(fd, buf, n, offset, 1); }
ssize_t write(int fd, const void *buf, size_t n) { return recorded_write(fd, buf, n, 0, 0); }

static int recorded_truncate(int fd, off_t length) {
    char path[PATH_MAX];
    if (!tracked(fd, path)) return real_ftruncate(fd, length);
    struct stat st;
    if (fstat(fd, &st) != 0) abort();
    size_t got;
    unsigned char *old = old_bytes(fd, length, st.st_size > length ? (size_t)(st.st_size - length) : 0, st.st_size, &got);
    int result = real_ftruncate(fd, length);
    if (result == 0) append('T', path, (uint64_t)length, (uint64_t)st.st_size, 0, old, got);
    free(old);
    return result;
}

int ftruncate64(int fd, off_t length) { return recorded_truncate(fd, length); }
int ftruncate(int fd, off_t length) { return recorded_truncate(fd, length); }

static int recorded_sync(int fd, int (*sync)(int)) {
    char path[PATH_MAX];
    if (!tracked(fd, path)) return sync(fd);
    struct stat log;
    if (fstat(logfd, &log) != 0) abort();
    int result = sync(fd);
    if (result == 0) {
        append('S', path, (uint64_t)log.st_size, 0, 0, NULL, 0);
        if (atomic_fetch_add(&syncs, 1) + 1 == cut_at) kill(getpid(), SIGKILL);
    }
    return result;
}

int fsync(int fd) { return recorded_sync(fd, real_fsync); }
int fdatasync(int fd) { return recorded_sync(fd, real_fdatasync); }
