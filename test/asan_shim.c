/*
 * Preloaded with AddressSanitizer's runtime into Debian's postgres (test/asan.sh): with libasan preloaded, the
 * server's first call, bindtextdomain() in set_pglocale_pgservice(), deadlocks on glibc's _nl_state_lock (even
 * `postgres -V` hangs). The tests run with lc_messages = C, so message catalogues are not needed: these two
 * stand-ins bind nothing and return what a successful call returns.
 */
char	   *bindtextdomain(const char *domainname, const char *dirname);
char	   *bind_textdomain_codeset(const char *domainname, const char *codeset);

char *
bindtextdomain(const char *domainname, const char *dirname)
{
	(void) domainname;
	return (char *) dirname;
}

char *
bind_textdomain_codeset(const char *domainname, const char *codeset)
{
	(void) domainname;
	return (char *) codeset;
}
