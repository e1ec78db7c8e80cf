#ifndef CCASKET_SHIMS_H
#define CCASKET_SHIMS_H

/// renameat2(2) with RENAME_NOREPLACE: returns 0, or -1 with errno set (EEXIST when the target exists,
/// EINVAL or ENOSYS when the file system or kernel lacks the flag, as NFS does).
int casket_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

/// The errno of the calling thread (Swift cannot read the thread-local macro portably).
int casket_errno(void);

/// Fills buf with len random bytes from the kernel (getrandom(2)); returns 0, or -1 with errno set.
int casket_random(void *buf, unsigned long len);

#endif
