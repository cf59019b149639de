# Installs libembedkit with its headers and a CMake package, so that a consumer writes
#   find_package(embedkit CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE embedkit::embedkit)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS embedkit EXPORT embedkitTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# detail/ is the library's own host/device math: no public header includes it (the header test in
# tests/ compiles each public header alone against the installed tree's layout).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/embedkit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        PATTERN detail EXCLUDE)
install(FILES ${PROJECT_BINARY_DIR}/include/embedkit/version.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/embedkit)
install(EXPORT embedkitTargets NAMESPACE embedkit:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/embedkit)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/embedkitConfig.cmake.in
  ${PROJECT_BINARY_DIR}/embedkitConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/embedkit)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/embedkitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/embedkitConfig.cmake ${PROJECT_BINARY_DIR}/embedkitConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/embedkit)
