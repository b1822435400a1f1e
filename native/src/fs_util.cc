#include "fs_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <new>

#include "errors.h"

namespace sluice {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

uint64_t Fd::Size() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) ThrowIo("fstat", errno, path_);
  return static_cast<uint64_t>(st.st_size);
}

size_t Fd::PreadFull(void* buf, size_t len, uint64_t offset) const {
  auto* p = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd_, p + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowIo("read", errno, path_);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

void Fd::PwriteFull(const void* buf, size_t len, uint64_t offset) const {
  auto* p = static_cast<const uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pwrite(fd_, p + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowIo("write", errno, path_);
    }
    done += static_cast<size_t>(n);
  }
}

bool Fd::TryPwriteDirect(const void* buf, size_t len, uint64_t offset) const {
  auto* p = static_cast<const uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pwrite(fd_, p + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL) return false;
      ThrowIo("write", errno, path_);
    }
    done += static_cast<size_t>(n);
    // A short direct write leaves the rest unaligned; let the caller finish it buffered.
    if (done < len && done % kDirectAlign != 0) return false;
  }
  return true;
}

void Fd::Truncate(uint64_t size) const {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) ThrowIo("ftruncate", errno, path_);
}

void Fd::Reserve(uint64_t from, uint64_t size) const {
  Truncate(size);
  if (size <= from) return;
  if (::fallocate(fd_, 0, static_cast<off_t>(from), static_cast<off_t>(size - from)) != 0) {
    // Filesystems without fallocate still work; the mapped writes reserve as they go.
    if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL) ThrowIo("fallocate", errno, path_);
  }
}

void Fd::Sync() const {
  if (::fsync(fd_) != 0) ThrowIo("fsync", errno, path_);
}

void Fd::Close() {
  if (fd_ < 0) return;
  int fd = fd_;
  fd_ = -1;
  // Linux always releases the descriptor, even when close() reports an error.
  if (::close(fd) != 0 && errno != EINTR) ThrowIo("close", errno, path_);
}

Fd OpenForRead(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) ThrowIo("open", errno, path);
  return Fd(fd, path);
}

void RefuseSameFile(const Fd& in, const std::string& out_path) {
  struct stat a, b;
  if (::fstat(in.get(), &a) != 0) ThrowIo("fstat", errno, in.path());
  if (::stat(out_path.c_str(), &b) != 0) return;  // a missing output cannot be the input
  if (a.st_dev == b.st_dev && a.st_ino == b.st_ino) ThrowIo("open", EINVAL, out_path);
}

Fd OpenDirect(const std::string& path) {
  // Lets the tests cover the page-cache path on filesystems that do have O_DIRECT.
  if (std::getenv("SLUICE_NATIVE_NO_DIRECT") != nullptr) return Fd();
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd < 0 ? Fd() : Fd(fd, path);
}

Fd OpenForWrite(const std::string& path, bool truncate, bool readable) {
  int flags = O_CREAT | (readable ? O_RDWR : O_WRONLY) | O_CLOEXEC | (truncate ? O_TRUNC : 0);
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) ThrowIo("open", errno, path);
  return Fd(fd, path);
}

AlignedBuffer::AlignedBuffer(size_t size) : size_(size) {
  void* p = nullptr;
  if (::posix_memalign(&p, 4096, size ? size : 1) != 0) throw std::bad_alloc();
  data_ = static_cast<uint8_t*>(p);
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

}  // namespace sluice

#include <sys/mman.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

namespace sluice {

Mapping::Mapping(const Fd& fd, uint64_t offset, size_t len, bool writable) {
  const uint64_t page = 4096;
  const uint64_t start = offset & ~(page - 1);
  map_len_ = static_cast<size_t>(offset - start) + len;
  path_ = fd.path();
  if (len == 0) return;
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  base_ = ::mmap(nullptr, map_len_, prot, MAP_SHARED, fd.get(), static_cast<off_t>(start));
  if (base_ == MAP_FAILED) {
    base_ = nullptr;
    ThrowIo("mmap", errno, fd.path());
  }
  data_ = static_cast<uint8_t*>(base_) + (offset - start);
}

Mapping::~Mapping() {
  if (base_ != nullptr) ::munmap(base_, map_len_);
}

void Mapping::Populate(bool write) const {
  if (base_ == nullptr) return;
  if (::madvise(base_, map_len_, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0) return;
  // EINVAL: kernel older than 5.14, just fault on access. EFAULT: the file shrank under us,
  // which would otherwise be a SIGBUS on access.
  if (errno != EINVAL) ThrowIo("madvise", errno, path_);
}

void FinishOutput(Fd& out, Fd& direct, uint64_t size) {
  if (direct.get() >= 0) {
    direct.Close();
    out.Truncate(size);
  }
  out.Sync();
  out.Close();
}

}  // namespace sluice
