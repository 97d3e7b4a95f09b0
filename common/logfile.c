/* See logfile.h. */
#include "common/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

int awf_logfile_open(const char *path, bool fifo_nonblocking, bool *no_reader)
{
    int fd;
    *no_reader = false;
    do {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);
    } while (fd < 0 && errno == EINTR);
    struct stat st;
    if (fd < 0) {
        int err = errno;
        *no_reader = err == ENXIO && stat(path, &st) == 0 && S_ISFIFO(st.st_mode);
        return -err;
    }
    if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode) || !fifo_nonblocking)
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}
