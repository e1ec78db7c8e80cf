#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "CCasketShims.h"

int casket_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
#ifdef RENAME_NOREPLACE
    return renameat2(olddirfd, oldpath, newdirfd, newpath, RENAME_NOREPLACE);
#else
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, 1u);
#endif
}

int casket_errno(void) { return errno; }

int casket_syncfs(int fd) { return syncfs(fd); }

int casket_start_writeback(int fd, long long offset, long long len) {
    return sync_file_range(fd, offset, len, SYNC_FILE_RANGE_WRITE);
}

long casket_copy_file_range(int fd_in, long long *off_in, int fd_out, unsigned long len) {
    /* The kernel advances *off_in (a loff_t, i.e. long long) by the count copied. */
    return (long)syscall(SYS_copy_file_range, fd_in, off_in, fd_out, NULL, (size_t)len, 0u);
}

int casket_random(void *buf, unsigned long len) {
    unsigned long filled = 0;
    while (filled < len) {
        long n = (long)syscall(SYS_getrandom, (char *)buf + filled, len - filled, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        filled += (unsigned long)n;
    }
    return 0;
}

int casket_open_tmpfile(const char *dir, unsigned int mode) {
#ifdef O_TMPFILE
    return open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, (mode_t)mode);
#else
    errno = EOPNOTSUPP;
    return -1;
#endif
}

int casket_link_tmpfile(int fd, const char *path) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
}
