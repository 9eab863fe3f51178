/*
 * rebind: an LD_PRELOAD resolver for tests that need a name to answer what
 * they choose. Other names go to the real resolver.
 *
 * "rebind.test", for the DNS-rebinding test, resolves to an allowed address
 * (127.0.0.2, standing in for a public one) and then to 127.0.0.1, where the
 * receiver listens: a check made on the name's first answer would let the
 * connection through to loopback; hookd's check on the address each socket
 * connects to must not.
 *
 * "moves.test" resolves to the address in the file $HOOKD_TEST_MOVES, read
 * at each lookup: a test moves the name from one address to another.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

/* The address in $HOOKD_TEST_MOVES, resolved as a numeric host. */
static int moved_to(gai_fn real, const char *service, const struct addrinfo *h,
                    struct addrinfo **res)
{
	const char *path = getenv("HOOKD_TEST_MOVES");
	FILE *f = path ? fopen(path, "r") : NULL;
	if (!f)
		return EAI_FAIL;
	char addr[64] = "";
	char *got = fgets(addr, sizeof(addr), f);
	fclose(f);
	if (!got)
		return EAI_FAIL;
	addr[strcspn(addr, " \r\n")] = '\0';
	return real(addr, service, h, res);
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
	gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	struct addrinfo h = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM,
	                      .ai_flags = AI_NUMERICHOST };
	if (node && strcmp(node, "moves.test") == 0)
		return moved_to(real, service, &h, res);
	if (!node || strcmp(node, "rebind.test") != 0)
		return real(node, service, hints, res);
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
