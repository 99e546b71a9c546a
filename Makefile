# retail_mid: PGXS build. The install script is concatenated from one SQL source per domain (src/<area>/<domain>.sql),
# in the order of INSTALL_ORDER, because later domains use the types and tables of earlier ones.
EXTENSION  = retail_mid
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" retail_mid.control)

INSTALL_ORDER = common/core foundation/keydict bitmap/bitmap tags/audience foundation/ods foundation/dwd foundation/dws \
	foundation/loaders foundation/synthetic consumer/oneid consumer/clv consumer/rfm consumer/aipl tags/tags_builtin \
	demand/forecast demand/promo demand/replenish site/site site/fulfilment governance/quality governance/metric \
	tags/reach governance/security

MODULE_big = retail_mid
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*/*.c)))
SHLIB_LINK += -lroaring -lnlopt -lm
PG_CPPFLAGS += -I$(srcdir)/src

DATA_built = retail_mid--$(EXTVERSION).sql
DATA = $(wildcard upgrade/retail_mid--*--*.sql)
EXTRA_CLEAN = retail_mid--$(EXTVERSION).sql results regression.diffs regression.out

# Every test/sql/<test>.sql is a regression test; each one creates the extension itself, so order does not matter.
REGRESS = $(sort $(basename $(notdir $(wildcard test/sql/*.sql))))
REGRESS_OPTS = --inputdir=test --outputdir=. --load-extension=plpgsql

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

retail_mid--$(EXTVERSION).sql: $(addprefix src/,$(addsuffix .sql,$(INSTALL_ORDER))) retail_mid.control
	( echo "-- retail_mid $(EXTVERSION): generated from src/*/*.sql by the Makefile; edit those files, not this one."; \
	  printf '%s\n' '\echo Use "CREATE EXTENSION retail_mid CASCADE" to load this file. \quit'; \
	  for d in $(INSTALL_ORDER); do echo; echo "-- ===== src/$$d.sql ====="; cat src/$$d.sql; done ) > $@

# The two commands the README opens with. Both install what is missing, build, install and use a throw-away cluster.
.PHONY: demo test bench
demo:
	bash test/demo.sh $(DATA_PATH)
test:
	bash test/run_tests.sh
bench:
	bash test/bench/run.sh $(BENCH)
