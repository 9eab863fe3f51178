/*
 * curlpoll: the poll set is fds[0], an eventfd for wakeups, then one entry
 * per socket libcurl watches. Each socket's index in fds is what libcurl
 * keeps for it (curl_multi_assign), so the socket callback updates or
 * removes it in O(1); a removal moves the last entry into the hole.
 */
#include "curlpoll.h"

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "timeutil.h"

struct ready {
	curl_socket_t fd;
	int mask; /* CURL_CSELECT_* */
};

struct curlpoll {
	CURLM *multi;
	struct pollfd *fds;
	struct ready *ready; /* the ready sockets of one poll, as many as fds */
	size_t n, cap;
	int64_t timer_at;    /* tu_mono_ms when libcurl wants its timeout; -1: none */
	long idle_kept;
	long maxconnects;    /* CURLMOPT_MAXCONNECTS as last set */
};

static bool grow(struct curlpoll *p)
{
	size_t cap = p->cap ? 2 * p->cap : 64;
	struct pollfd *fds = realloc(p->fds, cap * sizeof(*fds));
	if (!fds)
		return false;
	p->fds = fds;
	struct ready *ready = realloc(p->ready, cap * sizeof(*ready));
	if (!ready)
		return false;
	p->ready = ready;
	p->cap = cap;
	return true;
}

static void forget(struct curlpoll *p, size_t i)
{
	size_t last = --p->n;
	if (i != last) {
		p->fds[i] = p->fds[last];
		curl_multi_assign(p->multi, p->fds[i].fd, (void *)(uintptr_t)i);
	}
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what libcurl asks, or stop. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)easy;
	struct curlpoll *p = userp;
	size_t i = (uintptr_t)socketp; /* 0: not watched yet (fds[0] is ours) */
	if (what == CURL_POLL_REMOVE) {
		if (i)
			forget(p, i);
		return 0;
	}
	short events = (short)((what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0));
	if (!i) {
		if (p->n == p->cap && !grow(p))
			return -1; /* libcurl fails the transfer */
		i = p->n++;
		p->fds[i].fd = s;
		curl_multi_assign(p->multi, s, (void *)(uintptr_t)i);
	}
	p->fds[i].events = events;
	p->fds[i].revents = 0;
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: when libcurl wants curl_multi_socket_action
 * with CURL_SOCKET_TIMEOUT next. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct curlpoll *p = userp;
	p->timer_at = timeout_ms < 0 ? -1 : tu_mono_ms() + timeout_ms;
	return 0;
}

struct curlpoll *curlpoll_new(CURLM *multi, long idle_kept)
{
	struct curlpoll *p = calloc(1, sizeof(*p));
	if (!p || !grow(p)) {
		if (p) {
			free(p->fds);
			free(p->ready);
		}
		free(p);
		return NULL;
	}
	p->fds[0].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->fds[0].fd < 0) {
		free(p->fds);
		free(p->ready);
		free(p);
		return NULL;
	}
	p->fds[0].events = POLLIN;
	p->n = 1;
	p->multi = multi;
	p->timer_at = -1;
	p->idle_kept = idle_kept;
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, p);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(multi, CURLMOPT_TIMERDATA, p);
	return p;
}

void curlpoll_free(struct curlpoll *p)
{
	if (!p)
		return;
	curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, NULL);
	curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, NULL);
	close(p->fds[0].fd);
	free(p->fds);
	free(p->ready);
	free(p);
}

/* The ready sockets of the last poll, copied out first: handing one to
 * libcurl may add, move or remove entries of fds. */
static size_t take_ready(struct curlpoll *p)
{
	size_t k = 0;
	for (size_t i = 1; i < p->n; i++) {
		short r = p->fds[i].revents;
		if (!r)
			continue;
		p->fds[i].revents = 0;
		int mask = (r & (POLLIN | POLLHUP) ? CURL_CSELECT_IN : 0) |
		           (r & POLLOUT ? CURL_CSELECT_OUT : 0) |
		           (r & (POLLERR | POLLNVAL) ? CURL_CSELECT_ERR : 0);
		p->ready[k++] = (struct ready){ .fd = p->fds[i].fd, .mask = mask };
	}
	return k;
}

/* Connections in use (a socket watched each; fds[0] is ours) plus the
 * idle ones to keep: set before each call that may end a transfer. */
static void limit_connections(struct curlpoll *p)
{
	long want = (long)(p->n - 1) + p->idle_kept;
	if (want != p->maxconnects) {
		curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, want);
		p->maxconnects = want;
	}
}

static void act(struct curlpoll *p, curl_socket_t fd, int mask)
{
	int running;
	limit_connections(p);
	curl_multi_socket_action(p->multi, fd, mask, &running);
}

void curlpoll_run(struct curlpoll *p, int max_ms)
{
	int timeout = max_ms;
	if (p->timer_at >= 0) {
		int64_t left = p->timer_at - tu_mono_ms();
		timeout = left <= 0 ? 0 : left < max_ms ? (int)left : max_ms;
	}
	if (poll(p->fds, p->n, timeout) > 0) {
		if (p->fds[0].revents) {
			uint64_t v;
			while (read(p->fds[0].fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
				;
			p->fds[0].revents = 0;
		}
		size_t k = take_ready(p);
		for (size_t i = 0; i < k; i++)
			act(p, p->ready[i].fd, p->ready[i].mask);
	}
	if (p->timer_at >= 0 && tu_mono_ms() >= p->timer_at) {
		p->timer_at = -1; /* the action may set the next one */
		act(p, CURL_SOCKET_TIMEOUT, 0);
	}
}

void curlpoll_wakeup(struct curlpoll *p)
{
	uint64_t one = 1;
	ssize_t w = write(p->fds[0].fd, &one, sizeof(one));
	(void)w; /* full (EAGAIN): a wakeup is pending anyway */
}
