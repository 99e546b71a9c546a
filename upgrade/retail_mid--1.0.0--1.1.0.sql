-- retail_mid 1.0.0 -> 1.1.0: every change to the install script since the 1.0.0 release, in the order of CHANGELOG.md.
\echo Use "ALTER EXTENSION retail_mid UPDATE TO '1.1.0'" to load this file. \quit
