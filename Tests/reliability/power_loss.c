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
 * Names are journaled too: a file created ('C'), a directory made ('M'), a rename ('R',
 * with the bytes of a file it replaced) or a link ('L') is durable only once its
 * directory is synced ('D', an fsync of the directory). Until then a power cut may lose
 * it, as on ext4 without a journal; a file's own fsync does not keep its name. Removals
 * are not journaled (the shim errs towards losing less), nor writes through stdio, which
 * glibc makes without the PLT.
 *
 * Record: kind (1 byte: 'W' write, 'T' truncate, 'S' sync, or a name's kind above), then
 * five little-endian 64-bit fields: path length, offset, size before, length of the
 * change, length of the old bytes; then the path and the old bytes. A sync's offset field
 * is the log's length when the sync began. A rename's path is the old and the new name
 * with a newline between; its old bytes are the replaced file's, its length field is 1
 * when it replaced one and its size field that file's mode.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
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
static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_rename)(const char *, const char *);
static int (*real_link)(const char *, const char *);

__attribute__((constructor)) static void power_loss_start(void) {
    real_pwrite = dlsym(RTLD_NEXT, "pwrite64");
    real_write = dlsym(RTLD_NEXT, "write");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_open = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat64");
    real_mkdir = dlsym(RTLD_NEXT, "mkdir");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_link = dlsym(RTLD_NEXT, "link");
    const char *dir = getenv("POWER_LOSS_DIR"), *log = getenv("POWER_LOSS_LOG");
    if (!dir || !log || !realpath(dir, prefix)) return;
    prefix_length = strlen(prefix);
    const char *cut = getenv("POWER_LOSS_CUT_AT");
    if (cut) cut_at = atol(cut);
    logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* What a descriptor is worth recording as, its path into `path`: 'S' for a regular
 * file inside the journaled directory (not a -shm), 'D' for that directory or one inside
 * it, 0 for anything else. */
static char journaled(int fd, char *path) {
    if (logfd < 0 || fd == logfd) return 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, PATH_MAX - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    if ((size_t)n < prefix_length || strncmp(path, prefix, prefix_length) != 0) return 0;
    if ((size_t)n > prefix_length && path[prefix_length] != '/') return 0;
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    if (S_ISDIR(st.st_mode)) return 'D';
    int inside = (size_t)n > prefix_length, shm = n > 4 && strcmp(path + n - 4, "-shm") == 0;
    return S_ISREG(st.st_mode) && inside && !shm ? 'S' : 0;
}

static int tracked(int fd, char *path) { return journaled(fd, path) == 'S'; }

/* `name`'s absolute path into `path` (its directory resolved, so that it compares with
 * the prefix), when that is inside the journaled directory; else 0. */
static int tracked_name(const char *name, char *path) {
    if (logfd < 0) return 0;
    char copy[PATH_MAX], directory[PATH_MAX];
    if (snprintf(copy, sizeof copy, "%s", name) >= (int)sizeof copy) return 0;
    char *base = basename(copy);
    char parent[PATH_MAX];
    if (snprintf(parent, sizeof parent, "%s", name) >= (int)sizeof parent) return 0;
    if (!realpath(dirname(parent), directory)) return 0;
    if (snprintf(path, PATH_MAX, "%s/%s", directory, base) >= PATH_MAX) return 0;
    size_t n = strlen(path);
    if (n <= prefix_length || strncmp(path, prefix, prefix_length) != 0 || path[prefix_length] != '/') return 0;
    return !(n > 4 && strcmp(path + n - 4, "-shm") == 0);
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

/* The bytes [offset, offset + length) currently hold, cut at the file's end. A file
 * open for writing only is read through a second, read-only descriptor. */
static unsigned char *old_bytes(int fd, off_t offset, size_t length, off_t size, size_t *got) {
    *got = offset < size ? (size_t)(size - offset) < length ? (size_t)(size - offset) : length : 0;
    unsigned char *old = malloc(*got ? *got : 1);
    if (!old) abort();
    if (!*got || pread(fd, old, *got, offset) == (ssize_t)*got) return old;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    int reader = real_open(link, O_RDONLY | O_CLOEXEC, 0);
    if (reader < 0 || pread(reader, old, *got, offset) != (ssize_t)*got) abort();
    close(reader);
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
    char kind = journaled(fd, path);
    if (!kind) return sync(fd);
    struct stat log;
    if (fstat(logfd, &log) != 0) abort();
    int result = sync(fd);
    if (result == 0) {
        append(kind, path, (uint64_t)log.st_size, 0, 0, NULL, 0);
        if (atomic_fetch_add(&syncs, 1) + 1 == cut_at) kill(getpid(), SIGKILL);
    }
    return result;
}

int fsync(int fd) { return recorded_sync(fd, real_fsync); }
int fdatasync(int fd) { return recorded_sync(fd, real_fdatasync); }

/* Whether opening `name` with `flags` will create it inside the tree; its path into `path`. */
static int creates(const char *name, int flags, char *path) {
    struct stat st;
    return (flags & O_CREAT) && tracked_name(name, path) && lstat(path, &st) != 0;
}

static int opened(int fd, int fresh, const char *path) {
    if (fd >= 0 && fresh) append('C', path, 0, 0, 0, NULL, 0);
    return fd;
}

#define MODE(flags) \
    mode_t mode = 0; \
    if ((flags) & (O_CREAT | O_TMPFILE)) { \
        va_list arguments; \
        va_start(arguments, flags); \
        mode = (mode_t)va_arg(arguments, int); \
        va_end(arguments); \
    }

int open(const char *name, int flags, ...) {
    MODE(flags)
    char path[PATH_MAX];
    int fresh = creates(name, flags, path);
    return opened(real_open(name, flags, mode), fresh, path);
}

int open64(const char *name, int flags, ...) __attribute__((alias("open")));

/* Only names relative to the working directory, or absolute: the node opens no other. */
int openat(int directory, const char *name, int flags, ...) {
    MODE(flags)
    char path[PATH_MAX];
    int fresh = (directory == AT_FDCWD || name[0] == '/') && creates(name, flags, path);
    return opened(real_openat(directory, name, flags, mode), fresh, path);
}

int openat64(int directory, const char *name, int flags, ...) __attribute__((alias("openat")));

/* A name a call made (`result` 0), journaled as `kind` when tracked. Resolved after the
   call: only its parent directory is read, and a failed call keeps its errno. */
static int made(char kind, const char *name, int result) {
    char path[PATH_MAX];
    if (result == 0 && tracked_name(name, path)) append(kind, path, 0, 0, 0, NULL, 0);
    return result;
}

int mkdir(const char *name, mode_t mode) { return made('M', name, real_mkdir(name, mode)); }

int link(const char *from, const char *to) { return made('L', to, real_link(from, to)); }

/* The replaced file's bytes travel in the record, so that an undone rename puts it back. */
int rename(const char *from, const char *to) {
    char old_path[PATH_MAX], new_path[PATH_MAX];
    if (!tracked_name(from, old_path) || !tracked_name(to, new_path)) return real_rename(from, to);
    unsigned char *replaced = NULL;
    size_t replaced_length = 0;
    int replacing = 0;
    struct stat st = {0};
    if (lstat(new_path, &st) == 0 && S_ISREG(st.st_mode)) {
        int fd = real_open(new_path, O_RDONLY | O_CLOEXEC, 0);
        if (fd >= 0) {
            replaced = old_bytes(fd, 0, (size_t)st.st_size, st.st_size, &replaced_length);
            close(fd);
            replacing = 1;
        }
    }
    int result = real_rename(from, to);
    if (result == 0) {
        char both[2 * PATH_MAX + 1];
        size_t a = strlen(old_path), b = strlen(new_path);
        memcpy(both, old_path, a);
        both[a] = '\n';
        memcpy(both + a + 1, new_path, b + 1);
        append('R', both, 0, replacing ? (uint64_t)(st.st_mode & 07777) : 0, (uint64_t)replacing, replaced, replaced_length);
    }
    free(replaced);
    return result;
}
