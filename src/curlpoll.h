/*
 * curlpoll: drive CURLPOLL_MULTIS libcurl multi handles through
 * curl_multi_socket_action, over one epoll instance, so that libcurl works
 * only on the transfers whose sockets are ready or whose timers ran out.
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
 * Several multi handles, each with its own connection cache, because
 * libcurl 7.88's curl_multi_remove_handle walks the connection cache (in
 * search of the one connection the transfer used, for a check that only
 * CURLOPT_CONNECT_ONLY transfers need; later versions look it up by id).
 * Beside 2,000 hanging attempts at 2,000 hosts, that walk was a third of
 * the delivery loop's time. Transfers to one host and port always go to the
 * same multi handle (curlpoll_multi_for), so its connections are reused
 * and capped per host as before, and a walk covers about a sixteenth of
 * the hosts.
 *
 * It also sets how many connections libcurl may keep. libcurl counts those
 * in use against CURLMOPT_MAXCONNECTS too, and past it closes the oldest
 * idle one each time a transfer ends: with a fixed 1,024 and 2,000
 * attempts hanging at slow endpoints, every delivery to a healthy one paid
 * a new TLS handshake (1,943/s instead of 16,295/s). So before each call
 * into libcurl a multi's limit becomes its connections in use (the sockets
 * watched) plus the idle ones it may keep: what the other multis leave of
 * idle_kept, and never less than its share of it.
 *
 * One thread uses a curlpoll (with its multi handles); curlpoll_wakeup is
 * the one call any thread may make.
 */
#ifndef HK_CURLPOLL_H
#define HK_CURLPOLL_H

#include <curl/curl.h>

#define CURLPOLL_MULTIS 16

struct curlpoll;

/* Make the multi handles, take over their socket and timer callbacks, and
 * let them keep about idle_kept idle connections in all. NULL when out of
 * memory. */
struct curlpoll *curlpoll_new(long idle_kept);
/* curl_multi_cleanup each multi handle (it still calls back, closing
 * connections), then free. */
void curlpoll_free(struct curlpoll *p);

/* Multi handle i (below CURLPOLL_MULTIS), for options and transfers. */
CURLM *curlpoll_multi(struct curlpoll *p, unsigned i);
/* The multi handle for a transfer to url: the same for every URL with the
 * same authority (host and port as written, case folded). */
unsigned curlpoll_multi_for(const char *url);

/* Every socket a transfer on multi i connects with must be announced here
 * once made (from CURLOPT_OPENSOCKETFUNCTION) and closed through
 * curlpoll_close_socket (CURLOPT_CLOSESOCKETFUNCTION, with the curlpoll as
 * CURLOPT_CLOSESOCKETDATA): such a socket may stay in the epoll set between
 * transfers. */
void curlpoll_opened(struct curlpoll *p, unsigned i, curl_socket_t s);
int curlpoll_close_socket(void *curlpoll, curl_socket_t s);

/* Wait at most max_ms for a ready socket, libcurl's next timeout or a
 * wakeup, and hand libcurl what came. Finished transfers are then waiting
 * in curl_multi_info_read. */
void curlpoll_run(struct curlpoll *p, int max_ms);

/* Make the curlpoll_run under way, or the next one, return at once. Any
 * thread. */
void curlpoll_wakeup(struct curlpoll *p);

#endif
