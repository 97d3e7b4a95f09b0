# Read by cpack (CPACK_PROJECT_CONFIG_FILE) before each generator runs.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_PACKAGING_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "a .deb installs under /usr, this build under ${CPACK_PACKAGING_INSTALL_PREFIX}:"
                      " configure it with -DCMAKE_INSTALL_PREFIX=/usr (packaging/README.md)")
endif()
