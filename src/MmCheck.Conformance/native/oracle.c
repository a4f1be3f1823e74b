// SPDX-License-Identifier: GPL-2.0-only
/*
 * oracle.c - MmCheck conformance oracle: run mm operations on the real kernel
 * and report what it observed.
 *
 * Build:	gcc -O2 -static -Wall -Werror -o oracle oracle.c
 *
 * PROCESSES
 *
 *   controller	The process the driver starts.  It sets RLIMIT_STACK to 8 MiB
 *		and ADDR_NO_RANDOMIZE and re-execs itself once, so that the
 *		layout (mmap_base, [vdso], stack) is reproducible.  It closes
 *		every inherited fd above 2, creates NCHAN socketpairs (moved to
 *		fds 100..115, so subjects' fd tables look like a fresh process:
 *		0, 1, 2 and nothing below 100), forks subject 0 and then serves
 *		stdin: one command per line in, one result per command out.
 *
 *   subject p	A process whose address space the commands operate on.  Its
 *		stdin and stdout are /dev/null.  It serves channel p: reads one
 *		command line, executes it, answers with the result text
 *		terminated by a NUL byte.  "fork" makes a subject call fork();
 *		the child serves channel <newid>.  The binary is static and
 *		subjects use only static (.bss) buffers and the stack: nothing
 *		in the mmap area except [vvar], [vvar_vclock], [vdso] and what
 *		commands map.  SIGSEGV/SIGBUS in load/store are caught (on an
 *		alternate stack) and reported; the subject goes on.
 *
 * COMMANDS  (one line each; numbers decimal or 0x-hex, '-' allowed for the
 *	      signed fields fd/off/len; <p> is a subject id 0..NCHAN-1)
 *
 *   layout <p>				ok <mmap_top> <task_size>
 *   maps <p>				ok <n>, then n lines of /proc/self/maps
 *   mmap <p> <addr> <len> <prot> <flags> <fd> <off>	ok <addr> | err <errno>
 *   munmap <p> <addr> <len>			ok 0 | err <errno>
 *   mprotect <p> <addr> <len> <prot>		ok 0 | err <errno>
 *   madvise <p> <addr> <len> <advice>		ok 0 | err <errno>
 *   mremap <p> <old> <oldlen> <newlen> <flags> <newaddr>  ok <addr> | err <errno>
 *   memfd_create <p> <name> <flags>		ok <fd> | err <errno>
 *   ftruncate <p> <fd> <len>			ok 0 | err <errno>
 *   close <p> <fd>				ok 0 | err <errno>
 *   fork <p> <newid>				ok <newid> | err <errno>
 *   exit <p>					ok 0 (after the subject is gone)
 *   pid <p>					ok <pid>
 *   load <p> <addr> <size>			ok <value> | sig <name> <code> <addr>
 *   store <p> <addr> <size> <value>		ok 0 | sig <name> <code> <addr>
 *   pagemap <p> <addr>		ok <present> <exclusive> <pfn> <swapped> <file>
 *   smaps <p> <addr>		ok <start> <end> <rss_kb> <anon_kb> <vmflags,...>
 *				| ok none
 *   kpagecount [<p>] <pfn>			ok <count> | err <errno>
 *   kpageflags [<p>] <pfn>			ok <flags> | err <errno>
 *   quit					ok 0, then all subjects are
 *						killed and the controller exits
 *
 * RESULTS
 *   ok ...	success.  Addresses, loaded values, PFNs and kpageflags are
 *		printed 0x-hex; counts, kB, errno, fds, ids and flags bits
 *		(0/1) decimal.
 *   err <errno>	the syscall failed (decimal errno).
 *   sig <SIGSEGV|SIGBUS> <si_code> <si_addr>	the access faulted.
 *   bad <reason>	malformed command; nothing was executed.
 *   dead <p>	subject p died (killed or crashed) before or while answering.
 *
 *   mmap_top is the lowest start of the special mappings ([vvar],
 *   [vvar_vclock], [vdso], ...) that sit at the top of the mmap area just
 *   below the stack gap: top-down mmap allocations go below it.  task_size is
 *   the end of [stack], which without randomisation is STACK_TOP ==
 *   DEFAULT_MAP_WINDOW, the top of the default mmap window (TASK_SIZE on
 *   4-level paging).
 *
 *   smaps: the VMA containing <addr>; vmflags is the "VmFlags:" value with
 *   blanks turned into commas ("-" if empty); "ok none" if no VMA has <addr>.
 *
 *   load/store are single volatile accesses of exactly <size> (1, 2, 4, 8)
 *   bytes, unaligned allowed.  kpagecount/kpageflags run in the controller
 *   (the files are global; <p> is accepted and ignored).
 *
 * CHANNEL FRAMING (controller <-> subject): the controller forwards the
 * command line ('\n' terminated); the subject answers with the result text
 * followed by one NUL byte.  The controller watches a pidfd per subject, so a
 * subject that dies yields "dead <p>" instead of a hang.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NCHAN		8
#define CHAN_FD_BASE	100
#define MAX_TOKENS	12
#define MAX_ARGS	8
#define LINE_CAP	8192
#define OUT_CAP		(4 << 20)
#define STACK_RLIMIT	(8UL << 20)
#define REEXEC_MARK	"--oracle-reexeced"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open	434
#endif
#ifndef SYS_close_range
#define SYS_close_range	436
#endif

/* ------------------------------------------------------------------ */
/* Output buffer: one result, built by the command, sent by the loop. */

static char out[OUT_CAP + 64];
static size_t out_len;
static int out_overflow;

static void out_reset(void)
{
	out_len = 0;
	out_overflow = 0;
}

static void outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void outf(const char *fmt, ...)
{
	size_t room = OUT_CAP - out_len;
	va_list ap;
	int n;

	if (out_overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(out + out_len, room + 1, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n > room) {
		out_overflow = 1;
		return;
	}
	out_len += n;
}

static void out_raw(const char *s, size_t n)
{
	if (out_overflow || n > OUT_CAP - out_len) {
		out_overflow = 1;
		return;
	}
	memcpy(out + out_len, s, n);
	out_len += n;
}

static void reply_err(int e)
{
	outf("err %d\n", e);
}

static void reply_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply_bad(const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	out_reset();
	outf("bad %s\n", why);
}

/* For syscalls returning 0 or -1/errno. */
static void reply_status(long ret)
{
	if (ret == -1)
		reply_err(errno);
	else
		outf("ok %ld\n", ret);
}

/* For syscalls returning an address or -1/errno. */
static void reply_addr(long ret)
{
	if (ret == -1)
		reply_err(errno);
	else
		outf("ok 0x%lx\n", (unsigned long)ret);
}

/* ------------------------------------------------------------------ */
/* Plain fd I/O (no stdio: it could allocate).                         */

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

static void die(const char *msg)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "oracle: %s: %s\n", msg, strerror(errno));

	if (n > 0)
		write_all(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	_exit(111);
}

/* Buffered reader of '\n'-terminated lines. */
struct line_reader {
	int fd;
	size_t len;		/* bytes in buf */
	char buf[LINE_CAP];
};

/*
 * Read one line into @line (NUL-terminated, '\n' and '\r' stripped).
 * Returns 1 on a line, 0 on EOF, -1 if the line was too long (the rest of
 * it is skipped).
 */
static int read_line(struct line_reader *lr, char *line, size_t cap)
{
	int too_long = 0;

	for (;;) {
		char *nl = memchr(lr->buf, '\n', lr->len);
		ssize_t n;

		if (nl) {
			size_t ll = nl - lr->buf;

			if (!too_long && ll < cap) {
				memcpy(line, lr->buf, ll);
				if (ll && line[ll - 1] == '\r')
					ll--;
				line[ll] = '\0';
			} else {
				too_long = 1;
			}
			memmove(lr->buf, nl + 1, lr->len - ll - 1);
			lr->len -= ll + 1;
			return too_long ? -1 : 1;
		}
		if (lr->len == sizeof(lr->buf)) {
			/* Overlong line: drop what we have, keep looking for '\n'. */
			too_long = 1;
			lr->len = 0;
		}
		n = read(lr->fd, lr->buf + lr->len, sizeof(lr->buf) - lr->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		lr->len += n;
	}
}

/*
 * Call @fn on each line of the file at @path ('\n' stripped; overlong lines
 * truncated).  @fn returns nonzero to stop.  Returns 0 or an errno.
 */
static char file_chunk[1 << 16];
static char file_line[LINE_CAP];

static int for_each_line(const char *path, int (*fn)(char *line, void *arg), void *arg)
{
	size_t ll = 0;
	int fd, stop = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	while (!stop) {
		ssize_t n = read(fd, file_chunk, sizeof(file_chunk));
		ssize_t i;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			return e;
		}
		if (n == 0)
			break;
		for (i = 0; i < n && !stop; i++) {
			if (file_chunk[i] == '\n') {
				file_line[ll] = '\0';
				stop = fn(file_line, arg);
				ll = 0;
			} else if (ll < sizeof(file_line) - 1) {
				file_line[ll++] = file_chunk[i];
			}
		}
	}
	if (!stop && ll) {
		file_line[ll] = '\0';
		fn(file_line, arg);
	}
	close(fd);
	return 0;
}

/* Read the little-endian u64 at index @idx of a /proc array file. */
static int read_u64_at(const char *path, uint64_t idx, uint64_t *val)
{
	ssize_t n;
	int fd, e = 0;

	if (idx > (uint64_t)INT64_MAX / 8)
		return EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	n = pread(fd, val, sizeof(*val), (off_t)(idx * 8));
	if (n < 0)
		e = errno;
	else if (n != sizeof(*val))
		e = ENXIO;	/* past the end: no such page */
	close(fd);
	return e;
}

/* ------------------------------------------------------------------ */
/* Parsing.                                                            */

static int parse_u64(const char *s, uint64_t *v)
{
	int base = 10;
	char *end;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!isxdigit((unsigned char)*s))
			return -1;
	} else if (!isdigit((unsigned char)*s)) {
		return -1;
	}
	errno = 0;
	*v = strtoull(s, &end, base);
	return (errno || *end) ? -1 : 0;
}

static int parse_s64(const char *s, int64_t *v)
{
	int neg = s[0] == '-';
	uint64_t u;

	if (parse_u64(s + neg, &u))
		return -1;
	if (neg) {
		if (u > (uint64_t)INT64_MAX + 1)
			return -1;
		*v = (int64_t)(0 - u);
	} else {
		if (u > (uint64_t)INT64_MAX)
			return -1;
		*v = (int64_t)u;
	}
	return 0;
}

struct req;

enum subj_kind {
	SUBJ_REQUIRED,		/* cmd <p> args...			*/
	SUBJ_NONE,		/* cmd args...				*/
	SUBJ_OPTIONAL,		/* cmd [<p>] args...			*/
};

struct cmd {
	const char *name;
	enum subj_kind subj;
	/*
	 * One char per argument after <p>:
	 *   u  unsigned 64-bit	  l  signed 64-bit
	 *   i  int: -2^31 .. 2^32-1 (flags may be given as 0x-hex)
	 *   n  name: a string token
	 */
	const char *spec;
	const char *usage;
	void (*run)(struct req *r);	/* in the subject (NULL: none)	*/
	void (*ctl)(struct req *r, const char *line);	/* in the controller;
						   NULL: forward to subject */
};

struct req {
	const struct cmd *cmd;
	int p;				/* subject id, -1 if none	*/
	uint64_t u[MAX_ARGS];		/* numeric arguments		*/
	const char *s[MAX_ARGS];	/* raw argument tokens		*/
	char why[200];			/* parse error			*/
};

static const struct cmd *find_cmd(const char *name);

static int tokenize(char *line, char **tok, int max)
{
	int n = 0;
	char *save, *t;

	for (t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return -1;
		tok[n++] = t;
	}
	return n;
}

/* Parse @line (modified in place) into @r.  Returns 0, or -1 with r->why. */
static int parse_req(char *line, struct req *r)
{
	char *tok[MAX_TOKENS];
	const struct cmd *c;
	int n, i, first, nargs;

	memset(r, 0, sizeof(*r));
	r->p = -1;
	n = tokenize(line, tok, MAX_TOKENS);
	if (n < 0) {
		snprintf(r->why, sizeof(r->why), "too many tokens");
		return -1;
	}
	if (n == 0) {
		snprintf(r->why, sizeof(r->why), "empty command");
		return -1;
	}
	c = find_cmd(tok[0]);
	if (!c) {
		snprintf(r->why, sizeof(r->why), "unknown command '%.40s'", tok[0]);
		return -1;
	}
	r->cmd = c;
	nargs = strlen(c->spec);
	first = 1;
	if (c->subj == SUBJ_REQUIRED || (c->subj == SUBJ_OPTIONAL && n == nargs + 2)) {
		uint64_t p;

		if (n < 2 || parse_u64(tok[1], &p) || p >= NCHAN) {
			snprintf(r->why, sizeof(r->why),
				 "bad subject id (0..%d); usage: %s", NCHAN - 1, c->usage);
			return -1;
		}
		r->p = (int)p;
		first = 2;
	}
	if (n - first != nargs) {
		snprintf(r->why, sizeof(r->why), "expected %d argument(s); usage: %s",
			 nargs, c->usage);
		return -1;
	}
	for (i = 0; i < nargs; i++) {
		const char *a = tok[first + i];
		int64_t sv;
		int bad = 0;

		r->s[i] = a;
		switch (c->spec[i]) {
		case 'u':
			bad = parse_u64(a, &r->u[i]);
			break;
		case 'l':
			bad = parse_s64(a, &sv);
			r->u[i] = (uint64_t)sv;
			break;
		case 'i':
			bad = parse_s64(a, &sv) || sv < INT32_MIN || sv > (int64_t)UINT32_MAX;
			r->u[i] = (uint64_t)(int64_t)(int32_t)(uint32_t)sv;
			break;
		case 'n':
			break;
		}
		if (bad) {
			snprintf(r->why, sizeof(r->why), "bad number '%.40s' (argument %d); usage: %s",
				 a, i + 1, c->usage);
			return -1;
		}
	}
	return 0;
}

#define ARG_U(r, i)	((r)->u[i])
#define ARG_I(r, i)	((int)(int64_t)(r)->u[i])
#define ARG_L(r, i)	((int64_t)(r)->u[i])

/* ------------------------------------------------------------------ */
/* Subject: fault catching.                                            */

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t in_access;
static volatile int fault_sig, fault_code;
static void *volatile fault_addr;
static char altstack[64 * 1024];

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!in_access) {
		/* A bug in the oracle itself: die of it, the controller reports. */
		signal(sig, SIG_DFL);
		return;
	}
	fault_sig = sig;
	fault_code = si->si_code;
	fault_addr = si->si_addr;
	siglongjmp(fault_jmp, 1);
}

static void install_fault_handlers(void)
{
	struct sigaction sa;
	stack_t ss;

	ss.ss_sp = altstack;
	ss.ss_size = sizeof(altstack);
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL))
		die("sigaltstack");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fault_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL))
		die("sigaction");
}

/* One access of exactly @size bytes; returns 0 or the signal number. */
static int __attribute__((noinline)) access_once(int write, uintptr_t addr, int size, uint64_t *val)
{
	if (sigsetjmp(fault_jmp, 1)) {
		in_access = 0;
		return fault_sig;
	}
	in_access = 1;
#if defined(__x86_64__)
	if (write) {
		switch (size) {
		case 1: asm volatile("movb %0, (%1)" : : "q"((uint8_t)*val), "r"(addr) : "memory"); break;
		case 2: asm volatile("movw %0, (%1)" : : "r"((uint16_t)*val), "r"(addr) : "memory"); break;
		case 4: asm volatile("movl %0, (%1)" : : "r"((uint32_t)*val), "r"(addr) : "memory"); break;
		case 8: asm volatile("movq %0, (%1)" : : "r"((uint64_t)*val), "r"(addr) : "memory"); break;
		}
	} else {
		uint8_t v1; uint16_t v2; uint32_t v4; uint64_t v8;

		switch (size) {
		case 1: asm volatile("movb (%1), %0" : "=q"(v1) : "r"(addr) : "memory"); *val = v1; break;
		case 2: asm volatile("movw (%1), %0" : "=r"(v2) : "r"(addr) : "memory"); *val = v2; break;
		case 4: asm volatile("movl (%1), %0" : "=r"(v4) : "r"(addr) : "memory"); *val = v4; break;
		case 8: asm volatile("movq (%1), %0" : "=r"(v8) : "r"(addr) : "memory"); *val = v8; break;
		}
	}
#else
	{
		typedef uint16_t __attribute__((aligned(1), may_alias)) u16u;
		typedef uint32_t __attribute__((aligned(1), may_alias)) u32u;
		typedef uint64_t __attribute__((aligned(1), may_alias)) u64u;

		if (write) {
			switch (size) {
			case 1: *(volatile uint8_t *)addr = (uint8_t)*val; break;
			case 2: *(volatile u16u *)addr = (uint16_t)*val; break;
			case 4: *(volatile u32u *)addr = (uint32_t)*val; break;
			case 8: *(volatile u64u *)addr = *val; break;
			}
		} else {
			switch (size) {
			case 1: *val = *(volatile uint8_t *)addr; break;
			case 2: *val = *(volatile u16u *)addr; break;
			case 4: *val = *(volatile u32u *)addr; break;
			case 8: *val = *(volatile u64u *)addr; break;
			}
		}
	}
#endif
	in_access = 0;
	return 0;
}

static void reply_signal(int sig)
{
	outf("sig %s %d 0x%lx\n", sig == SIGBUS ? "SIGBUS" : sig == SIGSEGV ? "SIGSEGV" : "SIG?",
	     fault_code, (unsigned long)(uintptr_t)fault_addr);
}

/* ------------------------------------------------------------------ */
/* Subject commands.                                                   */

static int my_id = -1;
static int exit_after_reply;
static int chan_ctl[NCHAN];	/* controller ends */
static int chan_sub[NCHAN];	/* subject ends */

static void subject_loop(int id) __attribute__((noreturn));

/* Parsed /proc/self/maps entry, as far as layout needs it. */
struct map_ent {
	uint64_t start, end;
	char special;		/* a kernel special mapping: [vdso] etc.	*/
	char stack;		/* [stack]					*/
};

static struct map_ent map_ents[1 << 16];
static int n_map_ents;

/* "start-end perms offset dev inode   name" -> start, end, name. */
static int parse_maps_line(const char *line, uint64_t *start, uint64_t *end, const char **name)
{
	int n = -1;

	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %*s %*s %*s %*s %n", start, end, &n) < 2)
		return -1;
	*name = n < 0 ? "" : line + n;	/* no name: maybe no trailing blank */
	while (**name == ' ')
		(*name)++;
	return 0;
}

static int layout_line(char *line, void *arg)
{
	struct map_ent *e;
	const char *name;

	(void)arg;
	if (n_map_ents == (int)(sizeof(map_ents) / sizeof(map_ents[0])))
		return 1;
	e = &map_ents[n_map_ents];
	if (parse_maps_line(line, &e->start, &e->end, &name))
		return 0;
	e->stack = !strcmp(name, "[stack]");
	e->special = name[0] == '[' && !e->stack && strcmp(name, "[heap]") &&
		     strcmp(name, "[vsyscall]") && strncmp(name, "[anon", 5);
	n_map_ents++;
	return 0;
}

static void sub_layout(struct req *r)
{
	uint64_t top = 0;
	int i, s, e;

	(void)r;
	n_map_ents = 0;
	e = for_each_line("/proc/self/maps", layout_line, NULL);
	if (e) {
		reply_err(e);
		return;
	}
	for (s = 0; s < n_map_ents && !map_ents[s].stack; s++)
		;
	if (s == n_map_ents) {
		reply_err(ENOENT);
		return;
	}
	/* The contiguous run of special mappings just below the stack gap. */
	for (i = s - 1; i >= 0 && map_ents[i].special; i--) {
		if (top && map_ents[i].end != top)
			break;
		top = map_ents[i].start;
	}
	if (!top) {
		reply_err(ENOENT);
		return;
	}
	outf("ok 0x%" PRIx64 " 0x%" PRIx64 "\n", top, map_ents[s].end);
}

static char maps_text[OUT_CAP];
static size_t maps_len;
static int maps_lines, maps_overflow;

static int maps_line(char *line, void *arg)
{
	size_t n = strlen(line);

	(void)arg;
	if (n + 1 > sizeof(maps_text) - maps_len) {
		maps_overflow = 1;
		return 1;
	}
	memcpy(maps_text + maps_len, line, n);
	maps_text[maps_len + n] = '\n';
	maps_len += n + 1;
	maps_lines++;
	return 0;
}

static void sub_maps(struct req *r)
{
	int e;

	(void)r;
	maps_len = 0;
	maps_lines = 0;
	maps_overflow = 0;
	e = for_each_line("/proc/self/maps", maps_line, NULL);
	if (!e && maps_overflow)
		e = EOVERFLOW;
	if (e) {
		reply_err(e);
		return;
	}
	outf("ok %d\n", maps_lines);
	out_raw(maps_text, maps_len);
}

static void sub_mmap(struct req *r)
{
	reply_addr(syscall(SYS_mmap, ARG_U(r, 0), ARG_U(r, 1), ARG_I(r, 2), ARG_I(r, 3),
			   ARG_I(r, 4), ARG_L(r, 5)));
}

static void sub_munmap(struct req *r)
{
	reply_status(syscall(SYS_munmap, ARG_U(r, 0), ARG_U(r, 1)));
}

static void sub_mprotect(struct req *r)
{
	reply_status(syscall(SYS_mprotect, ARG_U(r, 0), ARG_U(r, 1), ARG_I(r, 2)));
}

static void sub_madvise(struct req *r)
{
	reply_status(syscall(SYS_madvise, ARG_U(r, 0), ARG_U(r, 1), ARG_I(r, 2)));
}

static void sub_mremap(struct req *r)
{
	reply_addr(syscall(SYS_mremap, ARG_U(r, 0), ARG_U(r, 1), ARG_U(r, 2), ARG_I(r, 3),
			   ARG_U(r, 4)));
}

static void sub_memfd_create(struct req *r)
{
	reply_status(syscall(SYS_memfd_create, r->s[0], (unsigned int)ARG_I(r, 1)));
}

static void sub_ftruncate(struct req *r)
{
	reply_status(syscall(SYS_ftruncate, ARG_I(r, 0), ARG_L(r, 1)));
}

static void sub_close(struct req *r)
{
	reply_status(syscall(SYS_close, ARG_I(r, 0)));
}

/*
 * After fork() the subject's own stack and .bss pages are shared copy-on-write,
 * and both processes write them at once.  A write fault on such a page that is
 * still in this CPU's lru_add batch (a page copied since the batch last moved)
 * makes wp_can_reuse_anon_folio() call lru_add_drain(), which drains every
 * per-CPU batch, the lazyfree one a case's MADV_FREE filled among them: whether
 * that happened would depend on how full the lru_add batch was, not on the case.
 * Faulting in a full batch of fresh pages first makes folio_batch_add_and_move()
 * move the lru_add batch to the LRU, which drains no other batch, so every page
 * written after fork() is already on the LRU.  That is the model's state at all
 * times: it has no lru_add batch.
 */
#define FOLIO_BATCH_SIZE	31
#define FLUSH_PAGES		(FOLIO_BATCH_SIZE + 1)
static char lru_flush_area[FLUSH_PAGES][4096] __attribute__((aligned(4096)));

static void flush_lru_add_batch(void)
{
	int i;

	/* MADV_DONTNEED drains nothing: the writes below fault in new pages. */
	syscall(SYS_madvise, lru_flush_area, sizeof(lru_flush_area), MADV_DONTNEED);
	for (i = 0; i < FLUSH_PAGES; i++)
		*(volatile char *)lru_flush_area[i] = 1;
}

static void sub_fork(struct req *r)
{
	int newid = ARG_I(r, 0);
	pid_t pid;

	if (newid < 0 || newid >= NCHAN) {
		reply_bad("bad new subject id %d", newid);
		return;
	}
	flush_lru_add_batch();
	pid = fork();
	if (pid < 0) {
		reply_err(errno);
		return;
	}
	if (pid == 0)
		subject_loop(newid);
	/* The controller turns this into "ok <newid>" once the child is ready. */
	outf("ok %d %d\n", newid, (int)pid);
}

static void sub_exit(struct req *r)
{
	(void)r;
	exit_after_reply = 1;
	outf("ok 0\n");
}

static void sub_pid(struct req *r)
{
	(void)r;
	outf("ok %d\n", (int)getpid());
}

static int check_size(int size)
{
	if (size == 1 || size == 2 || size == 4 || size == 8)
		return 0;
	reply_bad("size must be 1, 2, 4 or 8");
	return -1;
}

static void sub_load(struct req *r)
{
	uint64_t val = 0;
	int sig;

	if (check_size(ARG_I(r, 1)))
		return;
	sig = access_once(0, (uintptr_t)ARG_U(r, 0), ARG_I(r, 1), &val);
	if (sig)
		reply_signal(sig);
	else
		outf("ok 0x%" PRIx64 "\n", val);
}

static void sub_store(struct req *r)
{
	uint64_t val = ARG_U(r, 2);
	int size = ARG_I(r, 1), sig;

	if (check_size(size))
		return;
	if (size < 8 && (val >> (8 * size))) {
		reply_bad("value does not fit in %d byte(s)", size);
		return;
	}
	sig = access_once(1, (uintptr_t)ARG_U(r, 0), size, &val);
	if (sig)
		reply_signal(sig);
	else
		outf("ok 0\n");
}

static void sub_pagemap(struct req *r)
{
	uint64_t ent;
	int e;

	e = read_u64_at("/proc/self/pagemap", ARG_U(r, 0) / (uint64_t)getpagesize(), &ent);
	if (e) {
		reply_err(e);
		return;
	}
	outf("ok %d %d 0x%" PRIx64 " %d %d\n",
	     (int)(ent >> 63 & 1),			/* present		*/
	     (int)(ent >> 56 & 1),			/* exclusively mapped	*/
	     ent & (((uint64_t)1 << 55) - 1),			/* pfn (or swap entry)	*/
	     (int)(ent >> 62 & 1),			/* swapped		*/
	     (int)(ent >> 61 & 1));			/* file or shared anon	*/
}

struct smaps_state {
	uint64_t addr;
	int in_vma, found;
	uint64_t start, end, rss_kb, anon_kb;
	char flags[256];
};

/* "0123abcd-4567ef00 ..." ? */
static int is_vma_header(const char *line)
{
	const char *p = line;

	while (isxdigit((unsigned char)*p) && !isupper((unsigned char)*p))
		p++;
	return p != line && *p == '-';
}

static int smaps_line(char *line, void *arg)
{
	struct smaps_state *st = arg;
	const char *name;
	uint64_t start, end;

	if (is_vma_header(line)) {
		if (st->in_vma)
			return 1;	/* past the target VMA */
		if (!parse_maps_line(line, &start, &end, &name) &&
		    start <= st->addr && st->addr < end) {
			st->in_vma = st->found = 1;
			st->start = start;
			st->end = end;
		}
		return 0;
	}
	if (!st->in_vma)
		return 0;
	if (!strncmp(line, "Rss:", 4)) {
		st->rss_kb = strtoull(line + 4, NULL, 10);
	} else if (!strncmp(line, "Anonymous:", 10)) {
		st->anon_kb = strtoull(line + 10, NULL, 10);
	} else if (!strncmp(line, "VmFlags:", 8)) {
		const char *p = line + 8;
		size_t n = 0;

		while (*p && n < sizeof(st->flags) - 1) {
			if (*p == ' ') {
				if (n && st->flags[n - 1] != ',')
					st->flags[n++] = ',';
			} else {
				st->flags[n++] = *p;
			}
			p++;
		}
		if (n && st->flags[n - 1] == ',')
			n--;
		st->flags[n] = '\0';
	}
	return 0;
}

static void sub_smaps(struct req *r)
{
	static struct smaps_state st;
	int e;

	memset(&st, 0, sizeof(st));
	st.addr = ARG_U(r, 0);
	e = for_each_line("/proc/self/smaps", smaps_line, &st);
	if (e) {
		reply_err(e);
		return;
	}
	if (!st.found) {
		outf("ok none\n");
		return;
	}
	outf("ok 0x%" PRIx64 " 0x%" PRIx64 " %" PRIu64 " %" PRIu64 " %s\n",
	     st.start, st.end, st.rss_kb, st.anon_kb, st.flags[0] ? st.flags : "-");
}

/* ------------------------------------------------------------------ */
/* Controller.                                                         */

enum subj_state { S_FREE, S_LIVE, S_DEAD };

struct subject {
	enum subj_state state;
	pid_t pid;
	int pidfd;
};

static struct subject subjects[NCHAN];
static pid_t first_subject_pid;

static void kill_subjects(void);

static void reap_zombies(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* Discard anything left in channel @id (after a death, before reuse). */
static void drain_channel(int id)
{
	char junk[4096];

	while (recv(chan_ctl[id], junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
	while (recv(chan_sub[id], junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
}

static void mark_gone(int id, enum subj_state state)
{
	struct subject *s = &subjects[id];

	if (s->pidfd >= 0)
		close(s->pidfd);
	s->pidfd = -1;
	if (s->pid == first_subject_pid)
		waitpid(s->pid, NULL, 0);
	s->pid = 0;
	s->state = state;
	drain_channel(id);
	reap_zombies();
}

/*
 * Read one NUL-terminated message of subject @id from channel @id into
 * out[].  Returns 0, or -1 if the subject died first.
 */
static int recv_msg(int id)
{
	out_reset();
	for (;;) {
		struct pollfd pf[2] = {
			{ .fd = chan_ctl[id], .events = POLLIN },
			{ .fd = subjects[id].pidfd, .events = POLLIN },
		};
		ssize_t n;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (!(pf[0].revents & (POLLIN | POLLHUP))) {
			if (pf[1].revents)
				return -1;
			continue;
		}
		n = recv(chan_ctl[id], out + out_len, OUT_CAP - out_len, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		out_len += n;
		if (out[out_len - 1] == '\0') {
			out_len--;
			return 0;
		}
		if (out_len == OUT_CAP)
			return -1;	/* cannot happen: subjects cap at OUT_CAP */
	}
}

static int subject_alive(int id)
{
	struct pollfd pf = { .fd = subjects[id].pidfd, .events = POLLIN };

	return poll(&pf, 1, 0) == 0;
}

static void reply_dead(int id)
{
	mark_gone(id, S_DEAD);
	out_reset();
	outf("dead %d\n", id);
}

/* Check that @id names a live subject; otherwise put the reason in out[]. */
static int check_live(int id)
{
	if (subjects[id].state == S_LIVE && !subject_alive(id)) {
		reply_dead(id);
		return -1;
	}
	if (subjects[id].state == S_DEAD) {
		out_reset();
		outf("dead %d\n", id);
		return -1;
	}
	if (subjects[id].state == S_FREE) {
		reply_bad("no subject %d", id);
		return -1;
	}
	return 0;
}

/* Send @line to subject @id and put its answer in out[].  0 or -1 (dead). */
static int forward(int id, const char *line)
{
	if (check_live(id))
		return -1;
	if (write_all(chan_ctl[id], line, strlen(line)) || write_all(chan_ctl[id], "\n", 1) ||
	    recv_msg(id)) {
		reply_dead(id);
		return -1;
	}
	return 0;
}

static void ctl_forward(struct req *r, const char *line)
{
	forward(r->p, line);
}

static int open_pidfd(int id, pid_t pid)
{
	subjects[id].pid = pid;
	subjects[id].pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return subjects[id].pidfd < 0 ? -1 : 0;
}

static void ctl_fork(struct req *r, const char *line)
{
	int newid = ARG_I(r, 0), got_id, pid;
	char ready[64];

	if (newid < 0 || newid >= NCHAN) {
		reply_bad("new subject id must be 0..%d", NCHAN - 1);
		return;
	}
	if (newid == r->p || subjects[newid].state == S_LIVE) {
		reply_bad("subject %d already exists", newid);
		return;
	}
	drain_channel(newid);
	if (forward(r->p, line))
		return;
	out[out_len] = '\0';
	if (sscanf(out, "ok %d %d", &got_id, &pid) != 2)
		return;		/* err <errno> (or bad): relay as is */
	if (open_pidfd(newid, pid) || recv_msg(newid)) {
		reply_dead(newid);
		return;
	}
	out[out_len] = '\0';
	if (sscanf(out, "ready %63s", ready) != 1) {
		kill(pid, SIGKILL);
		reply_dead(newid);
		return;
	}
	subjects[newid].state = S_LIVE;
	out_reset();
	outf("ok %d\n", newid);
}

static void ctl_exit(struct req *r, const char *line)
{
	struct pollfd pf = { .fd = -1, .events = POLLIN };

	if (forward(r->p, line))
		return;
	/* Wait until it is gone, so its mm is torn down before we answer. */
	pf.fd = subjects[r->p].pidfd;
	while (poll(&pf, 1, -1) < 0 && errno == EINTR)
		;
	mark_gone(r->p, S_FREE);
}

static void ctl_kpage(struct req *r, const char *path)
{
	uint64_t v;
	int e = read_u64_at(path, ARG_U(r, 0), &v);

	if (e)
		reply_err(e);
	else if (!strcmp(path, "/proc/kpagecount"))
		outf("ok %" PRIu64 "\n", v);
	else
		outf("ok 0x%" PRIx64 "\n", v);
}

static void ctl_kpagecount(struct req *r, const char *line)
{
	(void)line;
	ctl_kpage(r, "/proc/kpagecount");
}

static void ctl_kpageflags(struct req *r, const char *line)
{
	(void)line;
	ctl_kpage(r, "/proc/kpageflags");
}

static void ctl_quit(struct req *r, const char *line)
{
	(void)r;
	(void)line;
	outf("ok 0\n");
	write_all(1, out, out_len);
	kill_subjects();
	_exit(0);
}

static void kill_subjects(void)
{
	int i;

	for (i = 0; i < NCHAN; i++) {
		if (subjects[i].state == S_LIVE) {
			kill(subjects[i].pid, SIGKILL);
			mark_gone(i, S_FREE);
		}
	}
}

/* ------------------------------------------------------------------ */
/* The command table.                                                  */

static const struct cmd commands[] = {
	{ "layout",	  SUBJ_REQUIRED, "",	   "layout <p>",		 sub_layout, NULL },
	{ "maps",	  SUBJ_REQUIRED, "",	   "maps <p>",			 sub_maps, NULL },
	{ "mmap",	  SUBJ_REQUIRED, "uuiiil", "mmap <p> <addr> <len> <prot> <flags> <fd> <off>",
									 sub_mmap, NULL },
	{ "munmap",	  SUBJ_REQUIRED, "uu",	   "munmap <p> <addr> <len>",	 sub_munmap, NULL },
	{ "mprotect",	  SUBJ_REQUIRED, "uui",	   "mprotect <p> <addr> <len> <prot>", sub_mprotect, NULL },
	{ "madvise",	  SUBJ_REQUIRED, "uui",	   "madvise <p> <addr> <len> <advice>", sub_madvise, NULL },
	{ "mremap",	  SUBJ_REQUIRED, "uuuiu",  "mremap <p> <old> <oldlen> <newlen> <flags> <newaddr>",
									 sub_mremap, NULL },
	{ "memfd_create", SUBJ_REQUIRED, "ni",	   "memfd_create <p> <name> <flags>", sub_memfd_create, NULL },
	{ "ftruncate",	  SUBJ_REQUIRED, "il",	   "ftruncate <p> <fd> <len>",	 sub_ftruncate, NULL },
	{ "close",	  SUBJ_REQUIRED, "i",	   "close <p> <fd>",		 sub_close, NULL },
	{ "fork",	  SUBJ_REQUIRED, "i",	   "fork <p> <newid>",		 sub_fork, ctl_fork },
	{ "exit",	  SUBJ_REQUIRED, "",	   "exit <p>",			 sub_exit, ctl_exit },
	{ "pid",	  SUBJ_REQUIRED, "",	   "pid <p>",			 sub_pid, NULL },
	{ "load",	  SUBJ_REQUIRED, "ui",	   "load <p> <addr> <size>",	 sub_load, NULL },
	{ "store",	  SUBJ_REQUIRED, "uiu",	   "store <p> <addr> <size> <value>", sub_store, NULL },
	{ "pagemap",	  SUBJ_REQUIRED, "u",	   "pagemap <p> <addr>",	 sub_pagemap, NULL },
	{ "smaps",	  SUBJ_REQUIRED, "u",	   "smaps <p> <addr>",		 sub_smaps, NULL },
	{ "kpagecount",	  SUBJ_OPTIONAL, "u",	   "kpagecount [<p>] <pfn>",	 NULL, ctl_kpagecount },
	{ "kpageflags",	  SUBJ_OPTIONAL, "u",	   "kpageflags [<p>] <pfn>",	 NULL, ctl_kpageflags },
	{ "quit",	  SUBJ_NONE,	 "",	   "quit",			 NULL, ctl_quit },
};

static const struct cmd *find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Main loops.                                                         */

static struct line_reader reader;
static char cmd_line[LINE_CAP];
static char parse_buf[LINE_CAP];

static void send_reply(int fd)
{
	if (out_overflow) {
		out_reset();
		reply_err(EOVERFLOW);
	}
	out[out_len++] = '\0';
	if (write_all(fd, out, out_len))
		_exit(0);	/* controller gone */
}

static void subject_loop(int id)
{
	struct req r;
	int n;

	my_id = id;
	memset(&reader, 0, sizeof(reader));
	reader.fd = chan_sub[id];
	out_reset();
	outf("ready %d\n", (int)getpid());
	send_reply(chan_sub[id]);

	for (;;) {
		n = read_line(&reader, cmd_line, sizeof(cmd_line));
		if (n == 0)
			_exit(0);	/* controller gone */
		out_reset();
		if (n < 0)
			reply_bad("line too long");
		else if (parse_req(cmd_line, &r))
			reply_bad("%s", r.why);
		else if (!r.cmd->run)
			reply_bad("'%s' is not a subject command", r.cmd->name);
		else if (r.p != my_id)
			reply_bad("sent to subject %d, this is %d", r.p, my_id);
		else
			r.cmd->run(&r);
		send_reply(chan_sub[id]);
		if (exit_after_reply)
			_exit(0);
	}
}

static void start_subject0(void)
{
	pid_t pid;
	int i, null;

	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		/* Only the controller holds controller ends: subjects see EOF
		 * on their channel when it goes away. */
		for (i = 0; i < NCHAN; i++)
			close(chan_ctl[i]);
		null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
			die("/dev/null");
		close(null);
		signal(SIGCHLD, SIG_IGN);	/* children are auto-reaped */
		install_fault_handlers();
		subject_loop(0);
	}
	first_subject_pid = pid;
	if (open_pidfd(0, pid))
		die("pidfd_open");
	if (recv_msg(0))
		die("subject 0 did not start");
	subjects[0].state = S_LIVE;
}

static void controller_loop(void)
{
	struct req r;
	int n;

	memset(&reader, 0, sizeof(reader));
	reader.fd = 0;
	for (;;) {
		n = read_line(&reader, cmd_line, sizeof(cmd_line));
		if (n == 0)
			break;
		out_reset();
		if (n < 0) {
			reply_bad("line too long");
		} else {
			strcpy(parse_buf, cmd_line);
			if (parse_req(parse_buf, &r))
				reply_bad("%s", r.why);
			else if (r.cmd->ctl)
				r.cmd->ctl(&r, cmd_line);
			else
				ctl_forward(&r, cmd_line);
		}
		if (out_overflow) {
			out_reset();
			reply_err(EOVERFLOW);
		}
		if (write_all(1, out, out_len))
			break;
		reap_zombies();
	}
	kill_subjects();
}

/* Fixed stack rlimit (it decides mmap_base) and no ASLR: re-exec once. */
static void fix_layout(char **argv)
{
	int pers = personality(0xffffffff);
	struct rlimit rl;

	if (argv[0] && argv[1] && !strcmp(argv[1], REEXEC_MARK)) {
		if (pers == -1 || !(pers & ADDR_NO_RANDOMIZE)) {
			errno = EPERM;
			die("ADDR_NO_RANDOMIZE did not stick");
		}
		return;
	}
	if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != STACK_RLIMIT) {
		rl.rlim_cur = STACK_RLIMIT;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < STACK_RLIMIT)
			rl.rlim_max = STACK_RLIMIT;
		setrlimit(RLIMIT_STACK, &rl);	/* best effort */
	}
	if (pers == -1 || personality(pers | ADDR_NO_RANDOMIZE) == -1)
		die("personality");
	{
		char *args[] = { argv[0] ? argv[0] : "oracle", REEXEC_MARK, NULL };

		execv("/proc/self/exe", args);
	}
	die("re-exec");
}

int main(int argc, char **argv)
{
	int i, sv[2];

	(void)argc;
	fix_layout(argv);
	signal(SIGPIPE, SIG_IGN);

	/* A clean fd table: 0, 1, 2 and the channels. */
	syscall(SYS_close_range, 3, ~0U, 0);
	for (i = 0; i < NCHAN; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
			die("socketpair");
		chan_ctl[i] = fcntl(sv[0], F_DUPFD, CHAN_FD_BASE + 2 * i);
		chan_sub[i] = fcntl(sv[1], F_DUPFD, CHAN_FD_BASE + 2 * i + 1);
		if (chan_ctl[i] < 0 || chan_sub[i] < 0)
			die("F_DUPFD");
		close(sv[0]);
		close(sv[1]);
		subjects[i].pidfd = -1;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		die("PR_SET_CHILD_SUBREAPER");

	start_subject0();
	controller_loop();
	return 0;
}
