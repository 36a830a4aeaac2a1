# zip.mk: the Lambda deployment package, included at the end of
# lambda/Makefile.am.
#
#   make -C lambda zip   (or `make lambda-zip` at the top)
#
# produces ssm-sign-proxy-function.zip: `bootstrap` at the root, the shared
# libraries it needs under lib/ (all but glibc's and libgcc_s, which
# provided.al2023 has), and MANIFEST.txt with their Debian package versions.
# mkzip.sh fails the build when anything in the zip needs a glibc newer
# than AL2023's 2.34. doc/lambda-deploy.md says how to deploy and rebuild it.
# It uses automake's bootstrap_OBJECTS/_LDADD/_CFLAGS/_LDFLAGS of the
# bootstrap program that Makefile.am defines.

FUNCTION_ZIP = ssm-sign-proxy-function.zip

# The zip's copy of the function is linked again from the same objects, with
# an rpath to lib/ next to it. DT_RPATH rather than DT_RUNPATH
# (--disable-new-dtags): RUNPATH only serves the binary's own NEEDED
# entries, RPATH also the libraries' dependencies (libcurl's libssl, ...),
# which are in lib/ too. The bootstrap that the tests and the Debian package
# use keeps no rpath.
bootstrap-zip: $(bootstrap_OBJECTS) $(bootstrap_DEPENDENCIES) $(EXTRA_bootstrap_DEPENDENCIES)
	$(AM_V_CCLD)$(CCLD) $(bootstrap_CFLAGS) $(CFLAGS) $(bootstrap_LDFLAGS) $(LDFLAGS) \
		-Wl,--disable-new-dtags -Wl,-rpath,'$$ORIGIN/lib' \
		-o $@ $(bootstrap_OBJECTS) $(bootstrap_LDADD) $(LIBS)

# Always rebuilt: the libraries come from the system, and `apt-get upgrade`
# changes them without changing anything make can see.
zip: bootstrap-zip
	$(AM_V_GEN)STRIP='$(STRIP)' ZIPCMD='$(ZIP)' $(SHELL) $(srcdir)/mkzip.sh bootstrap-zip \
		$(FUNCTION_ZIP) '$(PACKAGE_VERSION)'

.PHONY: zip

# This file defines lambda/'s CLEANFILES and EXTRA_DIST (automake refuses
# += before =): Makefile.am adds to them with += after the include line.
CLEANFILES = bootstrap-zip $(FUNCTION_ZIP)
EXTRA_DIST = zip.mk mkzip.sh template.yaml
