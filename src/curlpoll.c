/*
 * curlpoll: an epoll instance holds the eventfd for wakeups and the sockets
 * libcurl watches. What each socket is registered for is kept in an array
 * indexed by descriptor, so a change libcurl asks for that is already in
 * place costs no system call.
 *
 * A keep-alive connection is watched for its answer, then dropped as its
 * transfer ends (CURL_POLL_REMOVE), then watched again for the next one.
 * Done eagerly, that is an EPOLL_CTL_DEL and an EPOLL_CTL_ADD per delivery.
 * So a socket libcurl stops watching stays registered ("lazy"): if it
 * reports an event while unwatched, it is deleted then, and if libcurl
 * watches it again for the same events, nothing needs doing. This is only
 * safe for sockets whose close we see, since closing a descriptor drops its
 * registration and a new socket may get the same number: the connection
 * sockets, which come from the dispatcher's CURLOPT_OPENSOCKETFUNCTION
 * (curlpoll_opened) and go through CURLOPT_CLOSESOCKETFUNCTION
 * (curlpoll_close_socket). Any other socket (libcurl's resolver's socket
 * pair) is deleted eagerly.
 *
 * Each registration remembers which multi handle watches the socket, so an
 * event goes to that one; each multi handle has its own timer.
 */
#include "curlpoll.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "timeutil.h"

#define WAKE_TAG UINT64_MAX /* epoll data of the eventfd */
#define EVENTS_PER_WAIT 256

struct watch {
	uint32_t want;    /* EPOLLIN/EPOLLOUT libcurl asks for; 0: unwatched */
	uint32_t reg;     /* what the epoll instance holds; 0: not in it */
	bool lazy;        /* its close is seen: may stay registered unwatched */
	uint8_t lane;     /* the multi handle it belongs to */
};

/* One multi handle and what is known of its connections. */
struct lane {
	struct curlpoll *p;
	CURLM *multi;
	long watched;     /* sockets with want != 0: the connections in use */
	long idle;        /* connection sockets open and not watched */
	int64_t timer_at; /* tu_mono_ms when libcurl wants its timeout; -1: none */
	long maxconnects; /* CURLMOPT_MAXCONNECTS as last set */
};

struct curlpoll {
	int ep, wake;
	struct watch *w;  /* by descriptor */
	size_t nw;
	long idle_kept;
	struct lane lane[CURLPOLL_MULTIS];
};

/* The watch of fd, the array grown to hold it; NULL when out of memory. */
static struct watch *watch_of(struct curlpoll *p, curl_socket_t fd)
{
	size_t i = (size_t)fd;
	if (i >= p->nw) {
		size_t n = p->nw ? p->nw : 256;
		while (n <= i)
			n *= 2;
		struct watch *w = realloc(p->w, n * sizeof(*w));
		if (!w)
			return NULL;
		memset(w + p->nw, 0, (n - p->nw) * sizeof(*w));
		p->w = w;
		p->nw = n;
	}
	return &p->w[i];
}

/* Make the epoll instance hold events for fd (0: nothing). 0, or -1. */
static int sync_reg(struct curlpoll *p, curl_socket_t fd, struct watch *w, uint32_t events)
{
	if (events == w->reg)
		return 0;
	struct epoll_event ev = { .events = events, .data.fd = fd };
	int r;
	if (!events)
		r = epoll_ctl(p->ep, EPOLL_CTL_DEL, fd, NULL);
	else if (w->reg) {
		r = epoll_ctl(p->ep, EPOLL_CTL_MOD, fd, &ev);
		if (r != 0 && errno == ENOENT) /* closed unseen, its number reused */
			r = epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev);
	} else {
		r = epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev);
		if (r != 0 && errno == EEXIST) /* an untracked socket's number reused */
			r = epoll_ctl(p->ep, EPOLL_CTL_MOD, fd, &ev);
	}
	if (r != 0 && events)
		return -1;
	w->reg = events; /* a failed DEL: the descriptor is gone, and with it the entry */
	return 0;
}

/* A socket of w's lane starts (by 1) or stops (by -1) being watched. A
 * connection's socket (lazy) is idle while unwatched; the resolver's are
 * not connections. */
static void count_watched(struct curlpoll *p, const struct watch *w, int by)
{
	struct lane *l = &p->lane[w->lane];
	l->watched += by;
	if (w->lazy)
		l->idle -= by;
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what libcurl asks, or stop. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)easy;
	(void)socketp;
	struct lane *l = userp;
	struct curlpoll *p = l->p;
	struct watch *w = watch_of(p, s);
	if (!w)
		return -1; /* libcurl fails the transfer */
	uint32_t want = what == CURL_POLL_REMOVE ? 0
		: (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (!w->lazy) /* a connection's lane is set as it opens */
		w->lane = (uint8_t)(l - p->lane);
	if (want && !w->want)
		count_watched(p, w, 1);
	else if (!want && w->want)
		count_watched(p, w, -1);
	w->want = want;
	if (!want && w->lazy)
		return 0;
	return sync_reg(p, s, w, want);
}

/* CURLMOPT_TIMERFUNCTION: when libcurl wants curl_multi_socket_action
 * with CURL_SOCKET_TIMEOUT next. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct lane *l = userp;
	l->timer_at = timeout_ms < 0 ? -1 : tu_mono_ms() + timeout_ms;
	return 0;
}

struct curlpoll *curlpoll_new(long idle_kept)
{
	struct curlpoll *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	p->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_TAG };
	if (p->ep < 0 || p->wake < 0 || epoll_ctl(p->ep, EPOLL_CTL_ADD, p->wake, &ev) != 0) {
		curlpoll_free(p);
		return NULL;
	}
	p->idle_kept = idle_kept;
	for (unsigned i = 0; i < CURLPOLL_MULTIS; i++) {
		struct lane *l = &p->lane[i];
		l->p = p;
		l->timer_at = -1;
		if (!(l->multi = curl_multi_init())) {
			curlpoll_free(p);
			return NULL;
		}
		curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
		curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
		curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer);
		curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
	}
	return p;
}

void curlpoll_free(struct curlpoll *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < CURLPOLL_MULTIS; i++)
		if (p->lane[i].multi)
			curl_multi_cleanup(p->lane[i].multi); /* closes through p */
	if (p->ep >= 0)
		close(p->ep);
	if (p->wake >= 0)
		close(p->wake);
	free(p->w);
	free(p);
}

CURLM *curlpoll_multi(struct curlpoll *p, unsigned i)
{
	return p->lane[i].multi;
}

/* FNV-1a over the URL's authority, case folded. */
unsigned curlpoll_multi_for(const char *url)
{
	const char *s = strstr(url, "://");
	s = s ? s + 3 : url;
	uint32_t h = 2166136261u;
	for (; *s && *s != '/' && *s != '?' && *s != '#'; s++)
		h = (h ^ (unsigned char)tolower((unsigned char)*s)) * 16777619u;
	return h % CURLPOLL_MULTIS;
}

void curlpoll_opened(struct curlpoll *p, unsigned i, curl_socket_t s)
{
	struct watch *w = watch_of(p, s);
	if (!w) /* on_socket fails the transfer anyway */
		return;
	*w = (struct watch){ .lazy = true, .lane = (uint8_t)i };
	p->lane[i].idle++;
}

int curlpoll_close_socket(void *clientp, curl_socket_t s)
{
	struct curlpoll *p = clientp;
	if ((size_t)s < p->nw) {
		struct watch *w = &p->w[s];
		if (w->want)
			count_watched(p, w, -1);
		if (w->lazy)
			p->lane[w->lane].idle--;
		*w = (struct watch){ 0 }; /* close drops the registration */
	}
	return close(s);
}

/* Connections in use (a socket watched each) plus the idle ones to keep:
 * set before each call that may end a transfer. A lane may keep what the
 * others leave of idle_kept, and never less than its share: one busy host
 * keeps its connections, and many idle ones elsewhere cannot take all. */
static void limit_connections(struct lane *l)
{
	const struct curlpoll *p = l->p;
	long elsewhere = 0;
	for (unsigned i = 0; i < CURLPOLL_MULTIS; i++)
		if (&p->lane[i] != l)
			elsewhere += p->lane[i].idle;
	long share = p->idle_kept / CURLPOLL_MULTIS;
	long left = p->idle_kept - elsewhere;
	long want = l->watched + (left > share ? left : share);
	if (want != l->maxconnects) {
		curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, want);
		l->maxconnects = want;
	}
}

static void act(struct lane *l, curl_socket_t fd, int mask)
{
	int running;
	limit_connections(l);
	curl_multi_socket_action(l->multi, fd, mask, &running);
}

/* One event of epoll_wait: to libcurl, unless nobody watches the socket now
 * (a lazy registration, or a socket closed by an earlier action). */
static void dispatch_event(struct curlpoll *p, const struct epoll_event *ev)
{
	if (ev->data.u64 == WAKE_TAG) {
		uint64_t v;
		while (read(p->wake, &v, sizeof(v)) == (ssize_t)sizeof(v))
			;
		return;
	}
	curl_socket_t fd = ev->data.fd;
	struct watch *w = &p->w[fd]; /* registered, so within the array */
	if (!w->want) {
		sync_reg(p, fd, w, 0);
		return;
	}
	uint32_t e = ev->events;
	int mask = (e & (EPOLLIN | EPOLLHUP | EPOLLRDHUP) ? CURL_CSELECT_IN : 0) |
	           (e & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
	           (e & EPOLLERR ? CURL_CSELECT_ERR : 0);
	act(&p->lane[w->lane], fd, mask);
}

/* The earliest timer of the lanes; -1: none. */
static int64_t next_timer(const struct curlpoll *p)
{
	int64_t at = -1;
	for (unsigned i = 0; i < CURLPOLL_MULTIS; i++) {
		int64_t t = p->lane[i].timer_at;
		if (t >= 0 && (at < 0 || t < at))
			at = t;
	}
	return at;
}

void curlpoll_run(struct curlpoll *p, int max_ms)
{
	int timeout = max_ms;
	int64_t at = next_timer(p);
	if (at >= 0) {
		int64_t left = at - tu_mono_ms();
		timeout = left <= 0 ? 0 : left < max_ms ? (int)left : max_ms;
	}
	struct epoll_event ev[EVENTS_PER_WAIT];
	int k = epoll_wait(p->ep, ev, EVENTS_PER_WAIT, timeout);
	for (int i = 0; i < k; i++)
		dispatch_event(p, &ev[i]);
	int64_t now = tu_mono_ms();
	for (unsigned i = 0; i < CURLPOLL_MULTIS; i++) {
		struct lane *l = &p->lane[i];
		if (l->timer_at >= 0 && now >= l->timer_at) {
			l->timer_at = -1; /* the action may set the next one */
			act(l, CURL_SOCKET_TIMEOUT, 0);
		}
	}
}

void curlpoll_wakeup(struct curlpoll *p)
{
	uint64_t one = 1;
	ssize_t w = write(p->wake, &one, sizeof(one));
	(void)w; /* full (EAGAIN): a wakeup is pending anyway */
}
