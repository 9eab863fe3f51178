/*
 * duemap: a binary min-heap of endpoints by due time, with a hash table
 * (open addressing, linear probing) from endpoint id to its entry, so a
 * lowering finds its endpoint without a search. Entries live in one array
 * and refer to each other by index, so growing it moves nothing that
 * matters; freed ones are kept on a list for the next endpoint.
 */
#include "duemap.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TAKEN UINT32_MAX /* pos of an entry taken for a claim */
#define EMPTY 0          /* a free hash slot; slots hold entry index + 1 */

struct entry {
	char id[UUID_STR_LEN];
	uint32_t hash;
	uint32_t pos;    /* in heap[], or TAKEN; the next free entry when free */
	int64_t due;
	int64_t lowered; /* while TAKEN: the earliest lowering meanwhile */
};

struct duemap {
	pthread_mutex_t lock;
	struct entry *e;
	uint32_t ne, cap_e, free_e; /* free_e: head of the free list, + 1 */
	uint32_t *slot, mask;       /* hash table of mask + 1 slots */
	uint32_t *heap, nheap;      /* entry indexes; heap[0] the earliest */
	uint32_t live;              /* entries in use */
	bool stale;
	int64_t walked_at;
};

static uint32_t hash_id(const char *id)
{
	uint32_t h = 2166136261u;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h;
}

/* ---- the heap ------------------------------------------------------------ */

static void heap_set(struct duemap *m, uint32_t pos, uint32_t x)
{
	m->heap[pos] = x;
	m->e[x].pos = pos;
}

static void sift_up(struct duemap *m, uint32_t pos)
{
	uint32_t x = m->heap[pos];
	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;
		if (m->e[m->heap[parent]].due <= m->e[x].due)
			break;
		heap_set(m, pos, m->heap[parent]);
		pos = parent;
	}
	heap_set(m, pos, x);
}

static void sift_down(struct duemap *m, uint32_t pos)
{
	uint32_t x = m->heap[pos];
	for (;;) {
		uint32_t child = 2 * pos + 1;
		if (child >= m->nheap)
			break;
		if (child + 1 < m->nheap && m->e[m->heap[child + 1]].due < m->e[m->heap[child]].due)
			child++;
		if (m->e[x].due <= m->e[m->heap[child]].due)
			break;
		heap_set(m, pos, m->heap[child]);
		pos = child;
	}
	heap_set(m, pos, x);
}

/* The heap has room for every entry (it grows with them). */
static void heap_push(struct duemap *m, uint32_t x)
{
	heap_set(m, m->nheap++, x);
	sift_up(m, m->nheap - 1);
}

static uint32_t heap_pop(struct duemap *m)
{
	uint32_t top = m->heap[0];
	if (--m->nheap > 0) {
		heap_set(m, 0, m->heap[m->nheap]);
		sift_down(m, 0);
	}
	m->e[top].pos = TAKEN;
	return top;
}

/* ---- the table ----------------------------------------------------------- */

/* The slot holding id, or the empty one where it would go. */
static uint32_t slot_of(const struct duemap *m, const char *id, uint32_t hash)
{
	uint32_t i = hash & m->mask;
	while (m->slot[i] != EMPTY && strcmp(m->e[m->slot[i] - 1].id, id) != 0)
		i = (i + 1) & m->mask;
	return i;
}

/* Twice the slots: rehash every entry in use. */
static bool table_grow(struct duemap *m)
{
	uint32_t nslots = 2 * (m->mask + 1);
	uint32_t *slot = calloc(nslots, sizeof(*slot));
	if (!slot)
		return false;
	free(m->slot);
	m->slot = slot;
	m->mask = nslots - 1;
	for (uint32_t x = 0; x < m->ne; x++) {
		if (m->e[x].id[0] == '\0')
			continue;
		uint32_t i = m->e[x].hash & m->mask;
		while (m->slot[i] != EMPTY)
			i = (i + 1) & m->mask;
		m->slot[i] = x + 1;
	}
	return true;
}

/* Empty slot i, moving back the entries after it that probed past it
 * (backward shift: no tombstones to slow later searches). */
static void slot_clear(struct duemap *m, uint32_t i)
{
	for (uint32_t j = (i + 1) & m->mask; m->slot[j] != EMPTY; j = (j + 1) & m->mask) {
		uint32_t home = m->e[m->slot[j] - 1].hash & m->mask;
		/* Entry j may fill hole i unless its home lies cyclically in (i, j]. */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			m->slot[i] = m->slot[j];
			i = j;
		}
	}
	m->slot[i] = EMPTY;
}

/* A new entry for id, at slot i; UINT32_MAX when out of memory. */
static uint32_t entry_new(struct duemap *m, const char *id, uint32_t hash, uint32_t *i)
{
	if (2 * (m->live + 1) > m->mask + 1) {
		if (!table_grow(m))
			return UINT32_MAX;
		*i = slot_of(m, id, hash);
	}
	uint32_t x;
	if (m->free_e) {
		x = m->free_e - 1;
		m->free_e = m->e[x].pos;
	} else {
		if (m->ne == m->cap_e) {
			uint32_t cap = m->cap_e ? 2 * m->cap_e : 64;
			struct entry *e = realloc(m->e, cap * sizeof(*e));
			if (!e)
				return UINT32_MAX;
			m->e = e;
			uint32_t *heap = realloc(m->heap, cap * sizeof(*heap));
			if (!heap)
				return UINT32_MAX;
			m->heap = heap;
			m->cap_e = cap;
		}
		x = m->ne++;
	}
	memcpy(m->e[x].id, id, UUID_STR_LEN);
	m->e[x].id[UUID_STR_LEN - 1] = '\0';
	m->e[x].hash = hash;
	m->slot[*i] = x + 1;
	m->live++;
	return x;
}

static void entry_free(struct duemap *m, uint32_t x)
{
	slot_clear(m, slot_of(m, m->e[x].id, m->e[x].hash));
	m->e[x].id[0] = '\0';
	m->e[x].pos = m->free_e;
	m->free_e = x + 1;
	m->live--;
}

/* ---- the interface ------------------------------------------------------- */

struct duemap *duemap_new(void)
{
	struct duemap *m = calloc(1, sizeof(*m));
	if (m && !(m->slot = calloc(64, sizeof(*m->slot)))) {
		free(m);
		return NULL;
	}
	if (!m)
		return NULL;
	m->mask = 63;
	m->stale = true; /* nothing is known yet */
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

void duemap_free(struct duemap *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->e);
	free(m->slot);
	free(m->heap);
	free(m);
}

void duemap_lower(struct duemap *m, const char *id, int64_t due)
{
	uint32_t hash = hash_id(id);
	pthread_mutex_lock(&m->lock);
	uint32_t i = slot_of(m, id, hash);
	if (m->slot[i] == EMPTY) {
		uint32_t x = entry_new(m, id, hash, &i);
		if (x == UINT32_MAX) {
			m->stale = true;
		} else {
			m->e[x].due = due;
			heap_push(m, x);
		}
	} else {
		struct entry *e = &m->e[m->slot[i] - 1];
		if (e->pos == TAKEN) {
			if (due < e->lowered)
				e->lowered = due;
		} else if (due < e->due) {
			e->due = due;
			sift_up(m, e->pos);
		}
	}
	pthread_mutex_unlock(&m->lock);
}

size_t duemap_take(struct duemap *m, int64_t now, struct duemap_item **items)
{
	*items = NULL;
	size_t n = 0, cap = 0;
	pthread_mutex_lock(&m->lock);
	while (m->nheap && m->e[m->heap[0]].due <= now) {
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			struct duemap_item *grown = realloc(*items, cap * sizeof(**items));
			if (!grown) {
				m->stale = true; /* those taken so far go back with their times */
				break;
			}
			*items = grown;
		}
		uint32_t x = heap_pop(m);
		m->e[x].lowered = DUEMAP_NONE;
		memcpy((*items)[n].id, m->e[x].id, UUID_STR_LEN);
		(*items)[n++].due = m->e[x].due;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

void duemap_put(struct duemap *m, struct duemap_item *items, size_t n)
{
	pthread_mutex_lock(&m->lock);
	for (size_t k = 0; k < n; k++) {
		uint32_t i = slot_of(m, items[k].id, hash_id(items[k].id));
		if (m->slot[i] == EMPTY)
			continue; /* not taken: cannot happen */
		uint32_t x = m->slot[i] - 1;
		if (m->e[x].pos != TAKEN)
			continue;
		int64_t due = items[k].due < m->e[x].lowered ? items[k].due : m->e[x].lowered;
		if (due == DUEMAP_NONE) {
			entry_free(m, x);
		} else {
			m->e[x].due = due;
			heap_push(m, x);
		}
	}
	pthread_mutex_unlock(&m->lock);
	free(items);
}

int64_t duemap_first(struct duemap *m)
{
	pthread_mutex_lock(&m->lock);
	int64_t due = m->nheap ? m->e[m->heap[0]].due : DUEMAP_NONE;
	pthread_mutex_unlock(&m->lock);
	return due;
}

void duemap_stale(struct duemap *m)
{
	pthread_mutex_lock(&m->lock);
	m->stale = true;
	pthread_mutex_unlock(&m->lock);
}

bool duemap_walk_wanted(struct duemap *m, int64_t now, int64_t every_ms)
{
	pthread_mutex_lock(&m->lock);
	bool want = m->stale || (every_ms > 0 && now - m->walked_at >= every_ms);
	if (want) {
		m->stale = false;
		m->walked_at = now;
	}
	pthread_mutex_unlock(&m->lock);
	return want;
}
