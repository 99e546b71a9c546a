# retail_mid: PGXS build. The install script is concatenated from one SQL source per domain (src/<area>/<domain>.sql).
# Install order, the one rule: a file only uses objects created by files before it (test/layout/install_order.py checks
# it). Areas go from the shared base to what builds on it; within an area, the list of its folder gives the order.
EXTENSION  = retail_mid
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" retail_mid.control)

SQL_common     = core registry
SQL_bitmap     = bitmap
SQL_foundation = keydict ods dim partition dwd dwd_domains tenancy dws dws_domains loaders synthetic
SQL_consumer   = oneid clv rfm aipl
SQL_tags       = audience brand_scope insight tags_builtin reach reach_results
SQL_demand     = forecast reconcile promo replenish
SQL_site       = site fulfilment
SQL_goods      = mmm newproduct assortment
SQL_governance = security quality metric lockdown
SQL_dashboard  = dashboard
SQL_shard      = shard
SQL_AREAS      = common bitmap foundation consumer tags demand site goods governance dashboard shard
# every area's files in order, then src/pipeline.sql (the refresh across domains), installed last
INSTALL_ORDER  = $(foreach a,$(SQL_AREAS),$(addprefix $(a)/,$(SQL_$(a)))) pipeline

MODULE_big = retail_mid
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*/*.c)))
PG_CPPFLAGS += -I$(srcdir)/src
# Coexistence with other extensions in one backend (docs/coexistence.md). The library exports only what PostgreSQL
# calls: hidden visibility by default, PGDLLEXPORT = default visibility, and src/common/retail_mid.h, force-included
# first into every file, puts PGDLLEXPORT on each SQL-callable function. -Bsymbolic binds our own references to
# those exported names to our definitions. libroaring is not linked: _PG_init opens it privately.
# `override` so that a PG_CFLAGS/PG_CPPFLAGS given on the command line (test/run_tests.sh) adds to these flags.
override PG_CPPFLAGS += -DPGDLLEXPORT='__attribute__((visibility("default")))' -include $(srcdir)/src/common/retail_mid.h
override PG_CFLAGS += -fvisibility=hidden
SHLIB_LINK += -lnlopt -lm -Wl,-Bsymbolic

# The current version's script is built from src/; every released version's full script (frozen, never edited) and
# every upgrade script between versions live in upgrade/ (test/t/upgrade.t checks that they lead to the same catalog).
DATA_built = retail_mid--$(EXTVERSION).sql
DATA = $(wildcard upgrade/retail_mid--*.sql)
EXTRA_CLEAN = retail_mid--$(EXTVERSION).sql results regression.diffs regression.out

# Every test/sql/<test>.sql is a regression test; each one creates the extension itself, so order does not matter.
REGRESS = $(sort $(basename $(notdir $(wildcard test/sql/*.sql))))
REGRESS_OPTS = --inputdir=test --outputdir=. --load-extension=plpgsql

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

retail_mid--$(EXTVERSION).sql: $(addprefix src/,$(addsuffix .sql,$(INSTALL_ORDER))) retail_mid.control
	( echo "-- retail_mid $(EXTVERSION): generated from the SQL files of src/ by the Makefile; edit those files, not this one."; \
	  printf '%s\n' '\echo Use "CREATE EXTENSION retail_mid CASCADE" to load this file. \quit'; \
	  for d in $(INSTALL_ORDER); do echo; echo "-- ===== src/$$d.sql ====="; cat src/$$d.sql; done ) > $@

# The two commands the README opens with. Both install what is missing, build, install and use a throw-away cluster.
.PHONY: demo test bench dashboard
demo:
	bash test/demo.sh $(DATA_PATH)
# The dashboards (docs/dashboard.md): a throw-away cluster filled with the synthetic brand and every job the tiles read,
# then build/dashboard/retail_mid_dashboard.html (one page, opens offline) from the dash_* views. DASHBOARD_SMALL=1: small brand.
DASHBOARD_SMALL ?=
dashboard:
	bash test/deps.sh nodejs
	command -v npm >/dev/null || bash test/deps.sh npm
	$(MAKE) -s && rm -rf build/dashboard/install && $(MAKE) -s install DESTDIR=$(CURDIR)/build/dashboard/install >/dev/null
	RETAIL_MID_DESTDIR=$(CURDIR)/build/dashboard/install bash test/with_cluster.sh \
	  bash -c 'psql -X -q -A -t -v ON_ERROR_STOP=1 $(if $(DASHBOARD_SMALL),-v small=1) -f test/dashboard/data.sql >/dev/null && bash test/dashboard/build.sh'
test:
	bash test/run_tests.sh
bench:
	bash test/bench/run.sh $(BENCH)

# The hostile run (issue 19, docs/torture.md): every routine of the schema with bad values, as an admin and a superuser,
# then a bounded sqlsmith run as an admin; both against a throw-away cluster. Installs python3-psycopg2 and sqlsmith.
.PHONY: torture
TORTURE_ARGS ?=
SQLSMITH_QUERIES ?= 5000
torture:
	bash test/deps.sh python3-psycopg2 sqlsmith
	$(MAKE) -s && rm -rf tmp_install && $(MAKE) -s install DESTDIR=$(CURDIR)/tmp_install >/dev/null
	RETAIL_MID_DESTDIR=$(CURDIR)/tmp_install bash test/with_cluster.sh \
	  bash -c '/usr/bin/python3 test/torture/torture.py $(TORTURE_ARGS); a=$$?; bash test/torture/sqlsmith.sh $(SQLSMITH_QUERIES) 19; b=$$?; [ $$a -eq 0 ] && [ $$b -eq 0 ]'
