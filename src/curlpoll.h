/*
 * curlpoll: drive a libcurl multi handle through curl_multi_socket_action,
 * over an epoll instance of its own, so that libcurl works only on the
 * transfers whose sockets are ready or whose timers ran out.
 *
 * curl_multi_perform, which the dispatcher's loop called before, works on
 * every transfer each time, ready or not: with libcurl 7.88 a transfer
 * still in its TLS handshake costs an SSL_connect attempt per call, one
 * waiting for its answer a recv. Beside 500 endpoints each with an attempt
 * hanging, a drain to another endpoint ran at half its rate. epoll, rather
 * than poll(), so that a wait costs nothing per idle socket either: beside
 * 2,000 hanging attempts, each poll() went through all 2,000. A keep-alive
 * connection stays registered between its transfers, so a busy one costs
 * no epoll_ctl per delivery (curlpoll.c says how that stays correct).
 *
 * It also sets how many connections libcurl may keep. libcurl counts those
 * in use against CURLMOPT_MAXCONNECTS too, and past it closes the oldest
 * idle one each time a transfer ends: with a fixed 1,024 and 2,000
 * attempts hanging at slow endpoints, every delivery to a healthy one paid
 * a new TLS handshake (1,943/s instead of 16,295/s). So before each call
 * into libcurl the limit becomes the connections in use (the sockets
 * watched) plus the idle ones to keep.
 *
 * One thread uses a curlpoll (with its multi handle); curlpoll_wakeup is
 * the one call any thread may make.
 */
#ifndef HK_CURLPOLL_H
#define HK_CURLPOLL_H

#include <curl/curl.h>

struct curlpoll;

/* Take over multi's socket and timer callbacks, and let it keep idle_kept
 * idle connections. NULL when out of memory. */
struct curlpoll *curlpoll_new(CURLM *multi, long idle_kept);
/* Free, after curl_multi_cleanup (which still calls back). */
void curlpoll_free(struct curlpoll *p);

/* Every socket the multi's transfers connect with must be announced here
 * once made (from CURLOPT_OPENSOCKETFUNCTION) and closed through
 * curlpoll_close_socket (CURLOPT_CLOSESOCKETFUNCTION, with the curlpoll as
 * CURLOPT_CLOSESOCKETDATA): such a socket may stay in the epoll set between
 * transfers. */
void curlpoll_opened(struct curlpoll *p, curl_socket_t s);
int curlpoll_close_socket(void *curlpoll, curl_socket_t s);

/* Wait at most max_ms for a ready socket, libcurl's next timeout or a
 * wakeup, and hand libcurl what came. Finished transfers are then waiting
 * in curl_multi_info_read. */
void curlpoll_run(struct curlpoll *p, int max_ms);

/* Make the curlpoll_run under way, or the next one, return at once. Any
 * thread. */
void curlpoll_wakeup(struct curlpoll *p);

#endif
