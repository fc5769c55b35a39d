#ifndef CHILD_PROCESS_H
#define CHILD_PROCESS_H
#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (both NULL-terminated), its standard input,
/// output and error on `in`, `out` and `err` (-1: inherit the test process's own), and
/// every other descriptor closed in the child. Returns 0 and sets `*pid`, or an errno.
int child_process_spawn(const char *path, char *const argv[], char *const envp[], int in, int out, int err, pid_t *pid);

/// A pipe whose two ends are close-on-exec from the moment they exist, so a child
/// started by another thread meanwhile cannot inherit them. 0 or an errno.
int child_process_pipe(int fds[2]);

#endif
