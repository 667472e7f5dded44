package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// Mailer sends a plain-text mail (activation links, for now).
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// SMTPMailer sends mail through one SMTP server, configured by URL:
//
//	smtp://user:pass@host:587?from=portal@example.com   (STARTTLS when offered)
//	smtps://user:pass@host:465?from=portal@example.com  (TLS from the start)
//
// Credentials are sent only over TLS (or to localhost), as net/smtp's
// PlainAuth insists.
type SMTPMailer struct {
	host, port string
	user, pass string
	from       string
	implicit   bool
	// tlsConfig is nil in production (system roots); tests set it.
	tlsConfig *tls.Config
}

// ParseSMTPURL reads an --smtp-url value. Errors never repeat the
// password.
func ParseSMTPURL(raw string) (*SMTPMailer, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("smtp url: not a URL")
	}
	m := &SMTPMailer{host: u.Hostname(), port: u.Port()}
	switch u.Scheme {
	case "smtp":
		if m.port == "" {
			m.port = "587"
		}
	case "smtps":
		m.implicit = true
		if m.port == "" {
			m.port = "465"
		}
	default:
		return nil, fmt.Errorf("smtp url: scheme must be smtp or smtps, not %q", u.Scheme)
	}
	if m.host == "" {
		return nil, errors.New("smtp url: host missing")
	}
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
	}
	m.from = u.Query().Get("from")
	if m.from == "" {
		return nil, errors.New("smtp url: the from=ADDRESS parameter is required")
	}
	if a, err := mail.ParseAddress(m.from); err != nil || strings.ContainsAny(m.from, "\r\n") {
		return nil, fmt.Errorf("smtp url: from %q is not a mail address", m.from)
	} else {
		m.from = a.Address
	}
	return m, nil
}

// WithTLSConfig returns a copy that verifies the server with cfg (a
// private CA, say).
func (m *SMTPMailer) WithTLSConfig(cfg *tls.Config) *SMTPMailer {
	c := *m
	c.tlsConfig = cfg
	return &c
}

func (m *SMTPMailer) tlsConf() *tls.Config {
	if m.tlsConfig != nil {
		c := m.tlsConfig.Clone()
		if c.ServerName == "" {
			c.ServerName = m.host
		}
		return c
	}
	return &tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12}
}

// Send delivers one mail; it gives up after 30 seconds or when ctx ends.
func (m *SMTPMailer) Send(ctx context.Context, to, subject, body string) error {
	if strings.ContainsAny(to, "\r\n") || strings.ContainsAny(subject, "\r\n") {
		return errors.New("smtp: line break in a header")
	}
	if _, err := mail.ParseAddress(to); err != nil {
		return fmt.Errorf("smtp: bad recipient: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(m.host, m.port))
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if m.implicit {
		conn = tls.Client(conn, m.tlsConf())
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return err
	}
	defer c.Close()
	if !m.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(m.tlsConf()); err != nil {
				return err
			}
		}
	}
	if m.user != "" {
		if err := c.Auth(smtp.PlainAuth("", m.user, m.pass, m.host)); err != nil {
			return err
		}
	}
	if err := c.Mail(m.from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	msg := "From: " + m.from + "\r\nTo: " + to + "\r\nSubject: " + mime.QEncoding.Encode("utf-8", subject) +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
