% rebase('admin/layout')
<section class="admin-login">
  <h1>Editor login</h1>
  % if error:
  <p class="admin-alert" role="alert">{{error}}</p>
  % end
  <form method="post" action="/admin/login">
    <input type="hidden" name="csrf_token" value="{{login_token}}">
    <input type="hidden" name="next" value="{{next_url}}">
    <label for="password">Password</label>
    <input type="password" id="password" name="password" autocomplete="current-password" required autofocus>
    <p><button type="submit" class="button">Log in</button></p>
  </form>
</section>
