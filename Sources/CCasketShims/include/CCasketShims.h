#ifndef CCASKET_SHIMS_H
#define CCASKET_SHIMS_H

/// renameat2(2) with RENAME_NOREPLACE: returns 0, or -1 with errno set (EEXIST when the target exists,
/// EINVAL or ENOSYS when the file system or kernel lacks the flag, as NFS does).
int casket_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

/// copy_file_range(2): copies up to len bytes from fd_in at *off_in to fd_out at its offset, in the kernel.
/// Returns the count copied (0 at end of input), or -1 with errno set.
long casket_copy_file_range(int fd_in, long long *off_in, int fd_out, unsigned long len);

/// syncfs(2): flushes every file and directory of the file system holding fd. 0, or -1 with errno set.
int casket_syncfs(int fd);

/// sync_file_range(2) with SYNC_FILE_RANGE_WRITE: starts writeback of len bytes at offset without
/// waiting. Returns 0, or -1 with errno set.
int casket_start_writeback(int fd, long long offset, long long len);

/// The errno of the calling thread (Swift cannot read the thread-local macro portably).
int casket_errno(void);

/// Fills buf with len random bytes from the kernel (getrandom(2)); returns 0, or -1 with errno set.
int casket_random(void *buf, unsigned long len);

/// open(2) of an unnamed file in the folder dir (O_TMPFILE | O_WRONLY): it has no name until
/// casket_link_tmpfile gives it one, so a process killed while writing it leaves nothing behind.
/// Returns the descriptor, or -1 with errno set (EOPNOTSUPP, EISDIR or EINVAL where unsupported).
int casket_open_tmpfile(const char *dir, unsigned int mode);

/// linkat(2) of an open O_TMPFILE descriptor to path (through /proc/self/fd, which needs no privilege).
/// Returns 0, or -1 with errno set (EEXIST when path exists).
int casket_link_tmpfile(int fd, const char *path);

#endif
