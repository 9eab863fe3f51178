/*
 * rebind: an LD_PRELOAD resolver for the DNS-rebinding test. The name
 * "rebind.test" resolves to an allowed address (127.0.0.2, standing in for a
 * public one) and then to 127.0.0.1, where the receiver listens: a check made
 * on the name's first answer would let the connection through to loopback;
 * hookd's check on the address each socket connects to must not.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
	gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	if (!node || strcmp(node, "rebind.test") != 0)
		return real(node, service, hints, res);
	struct addrinfo h = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM,
	                      .ai_flags = AI_NUMERICHOST };
	struct addrinfo *first = NULL, *second = NULL;
	int rc = real("127.0.0.2", service, &h, &first);
	if (rc != 0)
		return rc;
	if ((rc = real("127.0.0.1", service, &h, &second)) != 0) {
		freeaddrinfo(first);
		return rc;
	}
	struct addrinfo *tail = first;
	while (tail->ai_next)
		tail = tail->ai_next;
	tail->ai_next = second;
	*res = first;
	return 0;
}
