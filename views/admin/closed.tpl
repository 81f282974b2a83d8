% rebase('admin/layout')
<section class="admin-closed">
  <h1>The editorial desk is closed</h1>
  <p>{{reason}}</p>
  <pre class="admin-code">.venv/bin/python app.py hash-password     # prints $2b$12$...
export ADMIN_PASSWORD_HASH='$2b$12$...'   # config.yaml: admin: {password_hash: "${ADMIN_PASSWORD_HASH}"}</pre>
  <p>Readers are not affected: only approved articles are ever public.</p>
</section>
