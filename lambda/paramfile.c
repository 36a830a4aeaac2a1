/*
 * paramfile.c: the YAML parameters file, read with libyaml's event parser.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "paramfile.h"
#include "xmalloc.h"

/* A parameters file is a few kilobytes; refuse anything absurd. */
#define PARAMFILE_MAX (16 * 1024 * 1024)

struct paramfile {
	char *path;
	int loaded;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime; /* a chmod changes only this */
	struct kvlist params;  /* full name -> value */
};

struct paramfile *
paramfile_new(const char *path)
{
	struct paramfile *pf = xcalloc(1, sizeof *pf);

	pf->path = xstrdup(path);
	kvlist_init(&pf->params);
	return pf;
}

static void
paramfile_clear(struct kvlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		explicit_bzero(l->v[i].value, strlen(l->v[i].value));
	kvlist_free(l);
}

void
paramfile_free(struct paramfile *pf)
{
	if (pf == NULL)
		return;
	paramfile_clear(&pf->params);
	free(pf->path);
	free(pf);
}

static int
paramfile_name_ok(const char *s)
{
	if (*s != '/')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("_.-/", *s) == NULL)
			return 0;
	return 1;
}

int
paramfile_parse(const char *text, size_t len, struct kvlist *out, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	enum { TOP, DOC, MAP, VALUE, AFTER_MAP, DONE } state = TOP;
	char *key = NULL;
	unsigned long keyline = 0;
	int ret = -1, docs = 0;

	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "cannot initialize the YAML parser");
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		unsigned long line;

		if (!yaml_parser_parse(&parser, &ev)) {
			/* Name the line where the broken construct starts (a
			 * quote left open) when libyaml knows it. */
			if (parser.context != NULL)
				snprintf(err, errlen, "line %lu: %s: %s at line %lu",
				         (unsigned long)parser.context_mark.line + 1,
				         parser.context,
				         parser.problem ? parser.problem : "syntax error",
				         (unsigned long)parser.problem_mark.line + 1);
			else
				snprintf(err, errlen, "line %lu: %s",
				         (unsigned long)parser.problem_mark.line + 1,
				         parser.problem ? parser.problem : "syntax error");
			goto out;
		}
		line = (unsigned long)ev.start_mark.line + 1;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_SEQUENCE_END_EVENT: /* never reached: a list is refused */
		case YAML_NO_EVENT:
			break;
		case YAML_STREAM_END_EVENT:
			yaml_event_delete(&ev);
			ret = 0;
			goto out;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				snprintf(err, errlen, "line %lu: more than one YAML document",
				         line);
				yaml_event_delete(&ev);
				goto out;
			}
			state = DOC;
			break;
		case YAML_DOCUMENT_END_EVENT:
			state = DONE;
			break;
		case YAML_MAPPING_START_EVENT:
			if (state != DOC) {
				snprintf(
				    err, errlen,
				    "line %lu: the value of %s must be a string, not a mapping",
				    state == VALUE ? keyline : line, key != NULL ? key : "a key");
				yaml_event_delete(&ev);
				goto out;
			}
			state = MAP;
			break;
		case YAML_MAPPING_END_EVENT:
			state = AFTER_MAP;
			break;
		case YAML_SEQUENCE_START_EVENT:
			if (state == DOC)
				snprintf(err, errlen,
				         "line %lu: expected a mapping of parameter names to "
				         "values, found a list",
				         line);
			else
				snprintf(err, errlen,
				         "line %lu: the value of %s must be a string, not a list",
				         state == VALUE ? keyline : line,
				         key != NULL ? key : "a key");
			yaml_event_delete(&ev);
			goto out;
		case YAML_ALIAS_EVENT:
			snprintf(err, errlen, "line %lu: aliases are not supported", line);
			yaml_event_delete(&ev);
			goto out;
		case YAML_SCALAR_EVENT: {
			const char *s = (const char *)ev.data.scalar.value;
			size_t n = ev.data.scalar.length;

			if (state == DOC) {
				/* A document that is only a scalar: "~" or empty is an
				 * empty file, anything else is not a mapping. */
				if (ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
				    (n == 0 || (n == 1 && s[0] == '~') || strcmp(s, "null") == 0))
					break;
				snprintf(
				    err, errlen,
				    "line %lu: expected a mapping of parameter names to values",
				    line);
				yaml_event_delete(&ev);
				goto out;
			}
			if (state == MAP) {
				if (memchr(s, '\0', n) != NULL || !paramfile_name_ok(s)) {
					snprintf(
					    err, errlen,
					    "line %lu: \"%.200s\" is not a parameter name (it "
					    "starts with '/' and holds only letters, digits and "
					    "\"_.-/\")",
					    line, s);
					yaml_event_delete(&ev);
					goto out;
				}
				if (kvlist_get_exact(out, s) != NULL) {
					snprintf(err, errlen, "line %lu: \"%.200s\" is given twice",
					         line, s);
					yaml_event_delete(&ev);
					goto out;
				}
				key = xstrndup(s, n);
				keyline = line;
				state = VALUE;
				break;
			}
			if (state == VALUE) {
				if (memchr(s, '\0', n) != NULL) {
					snprintf(err, errlen,
					         "line %lu: the value of %s holds a NUL", keyline,
					         key);
					yaml_event_delete(&ev);
					goto out;
				}
				kvlist_addn(out, key, strlen(key), s, n);
				free(key);
				key = NULL;
				state = MAP;
				break;
			}
			snprintf(err, errlen, "line %lu: unexpected value", line);
			yaml_event_delete(&ev);
			goto out;
		}
		}
		yaml_event_delete(&ev);
	}
out:
	free(key);
	yaml_parser_delete(&parser);
	return ret;
}

int
paramfile_refresh(struct paramfile *pf, char *err, size_t errlen)
{
	struct stat st;
	struct kvlist fresh = KVLIST_INIT;
	char *text = NULL, perr[512];
	size_t len = 0;
	ssize_t r;
	int fd;

	if (stat(pf->path, &st) == -1) {
		snprintf(err, errlen, "parameters file %s: %s", pf->path, strerror(errno));
		goto fail;
	}
	if (pf->loaded && st.st_dev == pf->dev && st.st_ino == pf->ino && st.st_size == pf->size &&
	    st.st_mtim.tv_sec == pf->mtime.tv_sec && st.st_mtim.tv_nsec == pf->mtime.tv_nsec &&
	    st.st_ctim.tv_sec == pf->ctime.tv_sec && st.st_ctim.tv_nsec == pf->ctime.tv_nsec)
		return 0;

	if ((fd = open(pf->path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "parameters file %s: %s", pf->path, strerror(errno));
		goto fail;
	}
	/* Check what was opened, not what the name pointed to a moment ago. */
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "parameters file %s: %s", pf->path, strerror(errno));
		close(fd);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "parameters file %s is not a regular file", pf->path);
		close(fd);
		goto fail;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen,
		         "parameters file %s has mode %04o: group or others may read or write "
		         "it, and it holds secrets; make it private (chmod 600 %s)",
		         pf->path, (unsigned)(st.st_mode & 07777), pf->path);
		close(fd);
		goto fail;
	}
	if (st.st_size > PARAMFILE_MAX) {
		snprintf(err, errlen, "parameters file %s is larger than %d bytes", pf->path,
		         PARAMFILE_MAX);
		close(fd);
		goto fail;
	}
	text = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		r = read(fd, text + len, (size_t)st.st_size - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "parameters file %s: %s", pf->path, strerror(errno));
			close(fd);
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	text[len] = '\0';
	if (paramfile_parse(text, len, &fresh, perr, sizeof perr) != 0) {
		snprintf(err, errlen, "parameters file %s: %s", pf->path, perr);
		goto fail;
	}
	explicit_bzero(text, len);
	free(text);
	paramfile_clear(&pf->params);
	pf->params = fresh;
	pf->loaded = 1;
	pf->dev = st.st_dev;
	pf->ino = st.st_ino;
	pf->size = st.st_size;
	pf->mtime = st.st_mtim;
	pf->ctime = st.st_ctim;
	return 0;
fail:
	if (text != NULL) {
		explicit_bzero(text, len);
		free(text);
	}
	paramfile_clear(&fresh);
	paramfile_clear(&pf->params);
	pf->loaded = 0;
	return -1;
}

size_t
paramfile_lookup(const struct paramfile *pf, const char *base, struct kvlist *out)
{
	size_t i, n = 0, blen = strlen(base);

	for (i = 0; i < pf->params.n; i++) {
		const char *name = pf->params.v[i].name;

		if (strncmp(name, base, blen) == 0 && name[blen] == '/' && name[blen + 1] != '\0') {
			kvlist_add(out, name + blen + 1, pf->params.v[i].value);
			n++;
		}
	}
	return n;
}
