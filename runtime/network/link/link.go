// Package link inspects and deletes host network interfaces (bridges that
// kelpie's CNI networks created) over rtnetlink. It never creates an
// interface: the CNI plugins do.
package link

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// IsBridge reports whether the host interface name exists and is a
// Linux bridge.
func IsBridge(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name, "bridge"))
	return err == nil
}

// Delete deletes the host interface name (in the calling thread's
// network namespace) with an RTM_DELLINK request. A missing interface is
// fine.
func Delete(name string) error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		if _, serr := os.Stat(filepath.Join("/sys/class/net", name)); errors.Is(serr, os.ErrNotExist) {
			return nil // gone meanwhile
		}
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	if err := rtnetlinkDelLink(ifi.Index); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return nil // gone meanwhile
		}
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// rtnetlinkDelLink sends RTM_DELLINK for the interface index and waits for
// the kernel's acknowledgement.
func rtnetlinkDelLink(index int) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}

	const seq = 1
	info := unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(index)}
	hdr := unix.NlMsghdr{
		Len:   uint32(unix.SizeofNlMsghdr + unix.SizeofIfInfomsg),
		Type:  unix.RTM_DELLINK,
		Flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK,
		Seq:   seq,
	}
	msg := make([]byte, 0, hdr.Len)
	msg = append(msg, unsafe.Slice((*byte)(unsafe.Pointer(&hdr)), unix.SizeofNlMsghdr)...)
	msg = append(msg, unsafe.Slice((*byte)(unsafe.Pointer(&info)), unix.SizeofIfInfomsg)...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}

	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("netlink parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return fmt.Errorf("netlink: short error message")
			}
			code := *(*int32)(unsafe.Pointer(&m.Data[0]))
			if code == 0 {
				return nil
			}
			return syscall.Errno(-code)
		}
	}
}
