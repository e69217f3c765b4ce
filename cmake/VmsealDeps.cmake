# Third-party libraries, all from Debian packages (scripts/deps.sh).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET libcrypto>=3.0 libssl>=3.0)
pkg_check_modules(INIH REQUIRED IMPORTED_TARGET inih)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
pkg_check_modules(LIBEVENT REQUIRED IMPORTED_TARGET libevent_core libevent_openssl libevent_pthreads)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(ARGON2 REQUIRED IMPORTED_TARGET libargon2)
