// Package hostfile keeps files on the host private to the server's user:
// directories 0700 and files 0600 whatever the umask, tightened when an
// older version left them wider.
package hostfile
