/*
 * test_kvlist.c: ordered header/query lists.
 */
#include "kvlist.h"
#include "tap.h"

int
main(void)
{
	struct kvlist l = KVLIST_INIT;

	kvlist_add(&l, "Set-Cookie", "a=1");
	kvlist_add(&l, "Host", "example.com");
	kvlist_add(&l, "set-cookie", "b=2");
	tap_ok(l.n == 3, "three entries kept in order");
	tap_ok(kvlist_count(&l, "SET-COOKIE") == 2, "count is case-insensitive");
	tap_is_str(kvlist_get(&l, "host"), "example.com", "get is case-insensitive");
	tap_ok(kvlist_get_exact(&l, "host") == NULL, "get_exact is case-sensitive");
	kvlist_set(&l, "Set-Cookie", "c=3");
	tap_ok(l.n == 2 && kvlist_count(&l, "set-cookie") == 1, "set replaces every value");
	tap_is_str(l.v[1].value, "c=3", "set appends the new value last");
	tap_ok(kvlist_del(&l, "HOST") == 1 && l.n == 1, "del removes by name");
	kvlist_free(&l);
	tap_ok(l.n == 0 && l.v == NULL, "free empties the list");
	return tap_done();
}
