// Foundation's Process on Linux (swift-corelibs-foundation as shipped with Swift 6.3.1)
// lists /proc/self/fd to find the descriptors to close in the child, copying each
// directory entry whole; an entry at the end of glibc's buffer can read past a mapped
// page, and the test process crashed with SIGSEGV in Process.run() (seen in CI, about
// one run in five; swiftlang/swift-corelibs-foundation#5472). glibc's closefrom action
// closes them in the child with close_range(2) and lists nothing. The child starts with
// every signal at its default and none blocked: the test process ignores SIGPIPE and
// servers under test may have set SIGTERM aside, and a child must not inherit either.
#define _GNU_SOURCE
#include "child_process.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

int child_process_spawn(const char *path, char *const argv[], char *const envp[], int in, int out, int err, pid_t *pid) {
    posix_spawn_file_actions_t actions;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) return rc;
    int wanted[3] = {in, out, err};
    for (int target = 0; target < 3 && rc == 0; target++) {
        if (wanted[target] >= 0) rc = posix_spawn_file_actions_adddup2(&actions, wanted[target], target);
    }
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attributes;
    if (rc == 0) rc = posix_spawnattr_init(&attributes);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return rc;
    }
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    rc = posix_spawnattr_setsigdefault(&attributes, &all);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attributes, &none);
    if (rc == 0) rc = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    if (rc == 0) rc = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return rc;
}

int child_process_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : errno;
}
