% rebase('admin/layout')
<section class="error-page">
  <p class="error-code">{{code}}</p>
  <h1>{{page_title}}</h1>
  <p class="admin-alert">{{message}}</p>
  <p><a href="{{back}}">Go back</a> · <a href="/admin">Queues</a></p>
</section>
