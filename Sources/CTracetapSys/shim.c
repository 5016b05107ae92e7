// _GNU_SOURCE must stay out of the module header: defining it there breaks Glibc's fd_set import.
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include "CTracetapSys.h"

int tt_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

int tt_set_linger_reset(int fd) {
    struct linger l = { .l_onoff = 1, .l_linger = 0 };
    return setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

void tt_line_buffer_stdout(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
}

const void *tt_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length) {
    return memmem(haystack, haystack_length, needle, needle_length);
}
