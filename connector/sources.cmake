# Sources of libdirconn from connector/ (included by the top-level CMakeLists.txt).
list(APPEND DIRCONN_SOURCES
  connector/error.c
  connector/log.c
  connector/config.c
  connector/ldap_entry.c
  connector/ldap_source.c
  connector/avatar.c
  connector/mapping.c
)
