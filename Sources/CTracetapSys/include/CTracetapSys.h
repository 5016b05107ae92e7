#ifndef CTRACETAPSYS_H
#define CTRACETAPSYS_H
// Linux calls Glibc's Swift overlay does not import: epoll, eventfd and the GNU-only accept4 and memmem.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>

int tt_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
/// Arms SO_LINGER with a zero timeout so that close() sends a TCP RST instead of a FIN.
int tt_set_linger_reset(int fd);
/// Makes stdout line-buffered even into a pipe (stdout is a C global Swift 6 will not touch).
void tt_line_buffer_stdout(void);
/// The first occurrence of needle in haystack (glibc's memmem, far faster than a byte-by-byte search).
const void *tt_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);
#endif
